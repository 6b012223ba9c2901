r"""Averaging each prediction with that of the mirrored image (test-time flips; a screen).

    python scripts/sweep.py --sweep=configs/sweeps/tta.py --workdir_root=runs/tta
    python scripts/results_table.py --flip_average=both \
        --chroma_gains=1,1.02,1.04,1.06,1.08,1.1 --reference=ema_decay=0,model.init_std=0 runs/tta/*

Every training change tried so far moved a recipe along one line of accuracy for colour
(docs/results.md). Averaging a generator's colours with those it gives the mirrored image,
mirrored back, is an ensemble of two views of one model: where the two agree nothing
changes, and where they disagree the average is nearer the truth in squared error, with
less chroma only there. So the question is whether it gains more accuracy than it loses
colour, measured against turning the chroma down, which is the line. The runs are the
recipes of docs/results.md trained again on one machine, seeds 0-2 each, on
`configs/cifar10.py:subset`:
  * the chosen recipe (the defaults);
  * the seed recipe (no EMA, flax's initialisation: what `:seed` sets on top of these);
  * the lead of configs/sweeps/lead.py (the auxiliary classifier at 5, the learning-rate decay
    from half way, the batch's sliced Wasserstein term at 70, the debiased EMA).
Scored on the validation split (train[90%:]) with and without the flip average, at chroma
gains 1 to 1.1 in steps of 0.02 (results_table.py's --flip_average=both --chroma_gains=...).
The rule, set once seed 0 of each recipe and the chosen recipe's seed 1 had been scored and
before the lead's seeds 1 and 2 had finished: the candidate is the lead with
the flip average at the smallest of those gains whose three-seed validation means reach both
colour targets (a colourfulness ratio of 0.8 and a histogram intersection of 0.85); its test
split is scored only if it also beats the seed recipe's same seeds on validation in pooled
PSNR and ΔE00. (Seed 0 alone: the flip average bought the lead 0.15 dB and 0.22 ΔE00 for
0.03 of ratio, more than turning its chroma down that far buys.)
"""
from configs.sweeps import Sweep

_SEED_RECIPE = {"ema_decay": 0.0, "model.init_std": 0.0}
_LEAD = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
         "swd_weight": 70.0, "swd_scope": "batch", "ema_debias": True}


def get_sweep() -> Sweep:
  """The points of the module docstring, seed by seed."""
  points = [{"seed": 0}, {**_LEAD, "seed": 0}, {**_SEED_RECIPE, "seed": 0}]
  for s in (1, 2):
    points += [{"seed": s}, {**_LEAD, "seed": s}, {**_SEED_RECIPE, "seed": s}]
  return Sweep(config="configs/cifar10.py:subset", points=points)
