r"""The critic: its updates per generator update and the size of the patches it judges (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/critic.py --workdir_root=runs/critic
    python scripts/results_table.py --reference=base runs/critic/*

Seed 0 each on `configs/cifar10.py:subset` (10 epochs), against the chosen recipe's seed 0
trained on the same machine the same day (`seed=0`, the first point), scored on the
validation split (train[90%:]) by the rule of docs/results.md:
  * `n_critic` 2 and 5. The recipes run one critic update per generator update (pix2pix's
    scheme); Gulrajani et al. train the critic five times for each generator update, so that
    the generator is judged by a critic near its optimum. Each critic update takes its own
    batch, so at the same 10 epochs n updates per iteration leave 2,860 / n generator updates
    (and less compute per epoch than n = 1: the generator's backward pass runs once per n
    batches). The EMA's decay is scaled so that it averages over the same 16,000 images and
    keeps the same 5.7% of the initial weights at the end (0.999 ** 2860 = 0.998 ** 1430 =
    0.995 ** 572).
  * `model.critic_layers` 2 and 1: patches of 22 and 10 pixels instead of 46 (three stride-2
    layers judge the whole 32-pixel image as one patch). Isola et al. found that smaller
    patches, down to single pixels, make pix2pix's colorizations more colourful.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The points of the module docstring, in its order, after the chosen recipe."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{"seed": 0},
                       {"n_critic": 2, "ema_decay": 0.998, "seed": 0},
                       {"n_critic": 5, "ema_decay": 0.995, "seed": 0},
                       {"model.critic_layers": 2, "seed": 0},
                       {"model.critic_layers": 1, "seed": 0}])
