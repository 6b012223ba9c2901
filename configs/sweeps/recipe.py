r"""Which of pix2pix's and WGAN-GP's usual improvements help the seed recipe (CIFAR-10 subset).

    python scripts/sweep.py --sweep=configs/sweeps/recipe.py --workdir_root=runs/recipe
    # Then, per run, the validation metrics, and the table (mean and spread over the seeds):
    for w in runs/recipe/*; do python -m colorize.evaluate --workdir=$w; done
    python scripts/results_table.py runs/recipe/*

One change at a time from the seed recipe (`configs/cifar10.py:seed,subset`: 10 epochs of
the subset's 4,576 training images, the same budget for every point), seed 0, then the
changes that looked useful, in pairs; the choice is made on the validation split
(train[90%:]), never on test, and confirmed with three seeds (docs/results.md):
  (none)                            the seed recipe itself
  ema_decay=0.999                   EMA of the generator (batch statistics recomputed for it)
  model.dropout_layers=full_width   dropout only where pix2pix has it (full-width layers)
  model.dropout=0                   no dropout
  optimizer.decay_start=0.5         constant, then linear decay to 0 (pix2pix)
  TTUR                              critic 4e-4, generator 1e-4 (Heusel et al. 2017)
  model.init_std=0.02               N(0, 0.02) kernels (the pix2pix tutorial)
  random_jitter=True                resize to 36, random crop 32 (pix2pix's jitter)
  l1_weight=30 / 300                the adversarial term's weight relative to L1 (Adam
                                    divides out the overall scale, so this ratio is the
                                    adversarial weight)
  model.norm=instance               a generator norm without running statistics
  ema_decay + decay_start           the EMA and the learning-rate decay together
  ema_decay + init_std              the EMA and the N(0, 0.02) init together (the other
                                    change that improved both PSNR and ΔE00 in the screen)
"""
from configs.sweeps import Sweep

CHANGES = [
    {},
    {"ema_decay": 0.999},
    {"model.dropout_layers": "full_width"},
    {"model.dropout": 0.0},
    {"optimizer.decay_start": 0.5},
    {"optimizer.generator_lr": 1e-4, "optimizer.critic_lr": 4e-4},
    {"model.init_std": 0.02},
    {"random_jitter": True},
    {"l1_weight": 30.0},
    {"l1_weight": 300.0},
    {"model.norm": "instance"},
    {"ema_decay": 0.999, "optimizer.decay_start": 0.5},
    {"ema_decay": 0.999, "model.init_std": 0.02},
]


def get_sweep() -> Sweep:
  """Every change above with seed 0: a screen; the seeds' spread is measured on the winner."""
  return Sweep(config="configs/cifar10.py:seed,subset",
               points=[{**change, "seed": 0} for change in CHANGES])
