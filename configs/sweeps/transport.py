r"""Runs for the colour transport (a screen): the most accurate start, and the classifier.

    python scripts/sweep.py --sweep=configs/sweeps/transport.py --workdir_root=runs/ot

then the tables of docs/results.md's "Moving the colours towards the true distribution after
training" (`--transport` is a decoding flag: these runs train as any other).

`configs/cifar10.py:subset` with the L1 loss alone, seeds 0-2: Freirich et al. 2021's path
starts best from the most accurate estimator. Then, as the transport meets the histogram's
target for every recipe and the colourfulness ratio is the target left, the auxiliary
classification with the learning-rate decay (configs/sweeps/auxclass.py's point without the
batch's colour term, which bought intersection with accuracy): on the validation split it
was 0.04 of ratio above the chosen recipe at the same PSNR. Seeds 0-2, validation split
(train[90%:]), by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

_CLASSIFIER = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5}


def get_sweep() -> Sweep:
  """The points of the module docstring, in its order."""
  points = [{"loss": "l1", "seed": s} for s in (0, 1, 2)]
  points += [{**_CLASSIFIER, "seed": s} for s in (0, 1, 2)]
  return Sweep(config="configs/cifar10.py:subset", points=points)
