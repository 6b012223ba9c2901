r"""Matching each image's colour distribution (a sliced Wasserstein term) on the chosen recipe.

    python scripts/sweep.py --sweep=configs/sweeps/swd.py --workdir_root=runs/swd
    python scripts/results_table.py --reference=chosen runs/swd/* runs/chosen,*

`configs/cifar10.py:subset` (the chosen recipe, 10 epochs of the subset's 4,576 training
images) with `swd_weight` times each image's sliced Wasserstein distance between its generated
and true ab (`losses.sliced_wasserstein`) added to the generator's loss: the L1 answers an
unsure pixel with a median colour, this term asks for the image's true spread of colours.
Weights 100 and 300 with seed 0 (a screen), against the chosen recipe's same seed
(`runs/chosen,seed=0`: `python -m colorize.main --config=configs/cifar10.py:subset
--workdir=runs/chosen,seed=0`). Chosen on the validation split (train[90%:]) by the rule of
docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The screen: weights 100 and 300, seed 0."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{"swd_weight": w, "seed": 0} for w in (100.0, 300.0)])
