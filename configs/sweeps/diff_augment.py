r"""DiffAugment: the critic's pairs randomly translated and cut out (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/diff_augment.py --workdir_root=runs/diffaug

then the two tables of docs/results.md's "DiffAugment for the critic" (one per recipe).

Zhao et al. 2020 report their largest gains on 10% of CIFAR-10, this project's subset: a
critic trained on few images memorises them, and transforming every image it sees, real and
generated alike, stops that (`critic_augment`, colorize/diff_augment.py). Their translation
and cutout together, and translation alone (cutout hides half the image from the critic, whose
patch here is the whole image), on the chosen recipe, seed 0 each on
`configs/cifar10.py:subset`, against the chosen recipe's seed 0 trained on the same machine
the same day (`seed=0`, the first point), validation split (train[90%:]), by the rule of
docs/results.md. Then, as translation and cutout together came out a little off the chosen
recipe's chroma line on seed 0 (+0.04 dB, -0.07 ΔE00 at its colourfulness), both with seeds 1
and 2, and on the lead of configs/sweeps/lead.py (the auxiliary classification, the
learning-rate decay and the batch's colour distribution at 70, debiased EMA), seed 0, with
and without; then, as on the lead it added a little of everything (+0.03 dB, -0.03 ΔE00,
+0.017 colourfulness ratio, +0.002 intersection), the lead with and without it with seeds 1
and 2, to be compared with the seed recipe's seeds 0-2 (docs/results.md has the commands).
"""
from configs.sweeps import Sweep

_LEAD = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5,
         "swd_weight": 70.0, "swd_scope": "batch", "ema_debias": True}
_AUGMENT = {"critic_augment": "translation,cutout"}


def get_sweep() -> Sweep:
  """The points of the module docstring, in its order."""
  points = [{"seed": 0}, {**_AUGMENT, "seed": 0}, {"critic_augment": "translation", "seed": 0}]
  points += [{**augment, "seed": s} for s in (1, 2) for augment in ({}, _AUGMENT)]
  points += [{**_LEAD, **augment, "seed": 0} for augment in ({}, _AUGMENT)]
  points += [{**_LEAD, **augment, "seed": s} for augment in (_AUGMENT, {}) for s in (1, 2)]
  return Sweep(config="configs/cifar10.py:subset", points=points)
