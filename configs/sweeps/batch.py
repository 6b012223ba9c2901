r"""The batch size at the same 10 epochs (a screen).

    python scripts/sweep.py --sweep=configs/sweeps/batch.py --workdir_root=runs/batch
    python scripts/results_table.py --chroma_gains=0.9,1,1.1 --reference=base \
        runs/critic/seed=0 runs/batch/*

The recipes train at pix2pix-tutorial batch 16 (pix2pix itself used 1). On 4,576 training
images, whose validation L1 stops improving after about five epochs, the number of updates
per epoch and the gradient noise of each may matter more than on a large dataset. Batch 8
(5,720 updates) and 32 (1,430) on `configs/cifar10.py:subset`, at the same learning rates,
with the EMA's decay scaled so that it averages over the same 16,000 images and keeps the
same 5.7% of the initial weights at the end (0.999 ** 2860 = 0.9995 ** 5720 = 0.998 ** 1430).
Seed 0 each, against the chosen recipe's seed 0 trained on the same machine the same day
(configs/sweeps/critic.py's `seed=0`), validation split (train[90%:]), by the rule of
docs/results.md.
"""
from configs.sweeps import Sweep


def get_sweep() -> Sweep:
  """Batch 8, then 32, each with its EMA decay."""
  return Sweep(config="configs/cifar10.py:subset",
               points=[{"batch_size": 8, "ema_decay": 0.9995, "seed": 0},
                       {"batch_size": 32, "ema_decay": 0.998, "seed": 0}])
