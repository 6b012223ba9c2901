r"""pix2pixHD's feature matching on the chosen recipe and on the lead (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/feature_matching.py --workdir_root=runs/fm
    python scripts/results_table.py --reference=... runs/fm/*

Every change that added colour so far bought it with accuracy, or the reverse: the L1 asks
each pixel for its true colour, and an unsure pixel answers with a median. Feature matching
(Wang et al. 2018, after Salimans et al. 2016; `losses.feature_matching`) asks instead that
the critic's hidden features of the generated pair match those of the true pair, image by
image: a paired loss measured where the critic looks (colour regions, edges), which pix2pixHD
found to steady training and sharpen its results. At pix2pixHD's weight, 10, seed 0 each, on
`configs/cifar10.py:subset`:
  * the chosen recipe with it, and the chosen recipe itself; and at 100, where the term is
    about as large as the L1's (10 makes it a tenth of it in the first epoch);
  * the lead of configs/sweeps/lead.py (the auxiliary classifier at 5, the learning-rate decay
    from half way, the batch's sliced Wasserstein term at 70, the debiased EMA) with it, and
    the lead itself.
The references are trained again on the machine that trains the changes, so that the pairs
share it. Scored on the validation split (train[90%:]) by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

_LEAD = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
         "swd_weight": 70.0, "swd_scope": "batch", "ema_debias": True}
_MATCHING = {"feature_matching_weight": 10.0}


def get_sweep() -> Sweep:
  """The points of the module docstring: the changes first, then their references."""
  points = [{**_MATCHING, "seed": 0}, {**_LEAD, **_MATCHING, "seed": 0},
            {"seed": 0}, {**_LEAD, "seed": 0}, {"feature_matching_weight": 100.0, "seed": 0}]
  return Sweep(config="configs/cifar10.py:subset", points=points)
