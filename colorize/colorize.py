"""`python -m colorize.colorize`: the `colorize` command under its name; its code is `cli`."""
import sys

from colorize import cli

if __name__ == "__main__":
  sys.exit(cli.run())
