r"""Dropout under the EMA (a screen): does the generator still need pix2pix's noise?

    python scripts/sweep.py --sweep=configs/sweeps/dropout_ema.py --workdir_root=runs/dropout

Without an EMA, turning the decoder's dropout off cost the seed recipe 0.20 dB and gave it
more colour (ratio 0.700 -> 0.741, histogram intersection 0.791 -> 0.819; configs/sweeps/
recipe.py): the noise the EMA removes between checkpoints may be part of that cost. Screened
on the most colourful recipe at the chosen recipe's accuracy, the auxiliary classification
with the learning-rate decay (configs/sweeps/transport.py), with and without dropout, seed 0,
validation split (train[90%:]), then by the rule of docs/results.md.
"""
from configs.sweeps import Sweep

_CLASSIFIER = {"model.num_classes": 10, "class_weight": 5.0, "optimizer.decay_start": 0.5}


def get_sweep() -> Sweep:
  """The classifier recipe as it is and without dropout, seed 0."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{**_CLASSIFIER, "seed": 0}, {**_CLASSIFIER, "model.dropout": 0.0,
                                                     "seed": 0}])
