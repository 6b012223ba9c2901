r"""The penalty and L1 weights of WGAN-GP, against a vanilla GAN and L1 alone (CIFAR-10 subset).

    python scripts/sweep.py --sweep=configs/sweeps/lambda_gp.py --workdir_root=runs/sweep
    # Then the table of all nine (the command sweep.py prints at the end):
    python -m colorize.evaluate --workdir=runs/sweep/loss=wgan_gp,lambda_gp=1,l1_weight=10 \
        --compare runs/sweep/loss=wgan_gp,lambda_gp=1,l1_weight=100 ...

Nine points, each the `configs/cifar10.py:subset` recipe (10 epochs on 90% of 5,085 images):
  loss=wgan_gp: lambda_gp in {1, 10, 100} x l1_weight in {10, 100}   (6 runs)
  loss=vanilla: l1_weight in {10, 100}     (2; lambda_gp is not in its loss)
  loss=l1:      the L1 term alone          (1; its weight only scales the gradient, which Adam
                                            divides out, so one run covers them)
The full 3 x 2 x 3 product would repeat the vanilla and L1 runs under names that differ in a
key they ignore. Each point is one `subset` run (the README's "Results" times three of them).
Not run yet: no results are claimed. docs/scaling.md has the sweep commands for SLURM and TPUs.
"""
from configs.sweeps import Sweep, grid


def get_sweep() -> Sweep:
  """The nine points above, on the `subset` variant of configs/cifar10.py."""
  return Sweep(
      config="configs/cifar10.py:subset",
      points=(grid({"loss": ["wgan_gp"], "lambda_gp": [1.0, 10.0, 100.0],
                    "l1_weight": [10.0, 100.0]})
              + grid({"loss": ["vanilla"], "l1_weight": [10.0, 100.0]})
              + grid({"loss": ["l1"]})))
