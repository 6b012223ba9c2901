"""`python -m colorize.colorize` (and older installs' `colorize` command): `cli.run`."""
import sys

from colorize.cli import run

if __name__ == "__main__":
  sys.exit(run())
