"""A two-point sweep over the tiny test config, for tests/sweep_test.py (seconds a point).

    python scripts/sweep.py --sweep=configs/sweeps/test.py --workdir_root=runs/sweep_test
"""
from configs.sweeps import Sweep, grid


def get_sweep() -> Sweep:
  """The test config with the WGAN-GP loss and with the L1 loss alone."""
  return Sweep(config="configs/test.py", points=grid({"loss": ["wgan_gp", "l1"]}))
