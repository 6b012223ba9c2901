r"""Twice the learning rates under the EMA, on the chosen recipe and on the lead (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/lr.py --workdir_root=runs/lr
    python scripts/results_table.py --reference=... runs/lr/*

The EMA averages out the noise of the weights' walk; with it, a larger step may cover more of
the way in the subset's short runs (2,860 iterations) at no cost in noise. The seed recipe's
learning rates (2e-4 for both models) were never varied with the EMA on: the recipe screen's
two-timescale point (configs/sweeps/recipe.py) had no EMA. So, seed 0 each, on
`configs/cifar10.py:subset`:
  * the chosen recipe with both learning rates at 4e-4, and the chosen recipe itself;
  * the lead of configs/sweeps/lead.py (the auxiliary classifier at 5, the learning-rate decay
    from half way, the batch's sliced Wasserstein term at 70, the debiased EMA) with both at
    4e-4, and the lead itself.
The references are trained again on the machine that trains the changes, so that the pairs
share it. Scored on the validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

_LEAD = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
         "swd_weight": 70.0, "swd_scope": "batch", "ema_debias": True}
_FAST = {"optimizer.generator_lr": 4e-4, "optimizer.critic_lr": 4e-4}


def get_sweep() -> Sweep:
  """The points of the module docstring: the changes first, then their references."""
  points = [{**_FAST, "seed": 0}, {**_LEAD, **_FAST, "seed": 0},
            {"seed": 0}, {**_LEAD, "seed": 0}]
  return Sweep(config="configs/cifar10.py:subset", points=points)
