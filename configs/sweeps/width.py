r"""A narrower generator (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/width.py --workdir_root=runs/width
    python scripts/results_table.py --chroma_gains=0.9,1,1.1 --reference=base \
        runs/critic/seed=0 runs/width/*

The generator has 16.7M parameters for 4,576 training images, and its validation L1 stops
improving after about five epochs while its training L1 keeps falling (docs/results.md, the
full-length runs): it memorises. A narrower U-Net has less to memorise with. Half the
channels of the outer layers (`model.width=32`, 6.3M parameters: the 512-channel inner layers
stay) and of every layer (`model.width=32,model.max_width=256`, 4.2M), the critic unchanged,
seed 0 each on `configs/cifar10.py:subset`, against the chosen recipe's seed 0 trained on the
same machine the same day (configs/sweeps/critic.py's `seed=0`), validation split
(train[90%:]), by the rule of docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """The two narrower generators of the module docstring."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{"model.width": 32, "seed": 0},
                       {"model.width": 32, "model.max_width": 256, "seed": 0}])
