r"""Class rebalancing of the L1 term (Zhang et al. 2016) on the chosen recipe (CIFAR-10 subset).

    python scripts/sweep.py --sweep=configs/sweeps/rebalance.py --workdir_root=runs/rebalance
    python scripts/results_table.py --reference=l1_rebalance=0 runs/rebalance/*

`configs/cifar10.py:subset` (the chosen recipe, 10 epochs of the subset's 4,576 training
images), seed 0, with the L1 of each pixel weighted by the rarity of its true colour
(colorize/rebalance.py): strength 0 (the recipe itself), a mild 0.1, and Zhang et al.'s 0.5.
Chosen on the validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The three strengths above, seed 0: a screen; a winner is confirmed with three seeds."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{"l1_rebalance": s, "seed": 0} for s in (0.0, 0.1, 0.5)])
