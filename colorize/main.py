r"""Trains a colorizer: `python -m colorize.main --config=configs/cifar10.py --workdir=runs/x`.

Any config key can be overridden: `--config.batch_size=64 --config.model.norm=instance`.
On a TPU pod slice or under SLURM, run the same command in every process: JAX's distributed
runtime is started from what the environment says (`colorize.distributed`); elsewhere, give
each process `--coordinator_address=host:port --num_processes=N --process_id=I`.
Mistakes a user can fix (bad config values, missing data, an unwritable workdir) end with one
line, not a traceback. Run the same command again to resume; after SIGTERM the run saves a
checkpoint and exits with status 0.
"""
import errno
import logging as std_logging
import re
import sys

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from colorize import distributed
from colorize import train
from colorize.errors import UserError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Training config file, e.g. configs/cifar10.py[:variant].",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and plots.")
flags.DEFINE_string(
    "coordinator_address", None,
    "host:port of process 0, for a multi-process run outside a TPU pod slice or SLURM (those "
    "are detected); every process gives the same address.")
flags.DEFINE_integer("num_processes", None, "Processes in a multi-process run.", lower_bound=1)
flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).",
                     lower_bound=0)
flags.mark_flags_as_required(["config", "workdir"])

# Errors that mean "the disk is full or will not take writes", not a bug.
_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG)


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a one-line error for a wrong value or an unknown config key."""
  try:
    return FLAGS(argv)
  except flags.Error as e:  # E.g. "flag --config.batch_size=abc: invalid literal for int()".
    raise SystemExit(f"error: {e}") from None
  except (AttributeError, KeyError) as e:
    # A locked config refuses unknown keys; ml_collections words it as a KeyError (quoted
    # twice over, with a "Did you mean" hint) wrapped in an AttributeError.
    message = str(e).replace("\\", "")
    key = re.search(r"[A-Za-z_]\w*", message)
    key = key.group(0) if key else message
    hint = re.search(r'Did you mean "([\w.]+)"', message)
    flag = next((a.split("=")[0] for a in argv if a.startswith("--config.") and key in a),
                "--config")
    raise SystemExit(
        f"error: {flag}: unknown config key {key!r}"
        f"{f' (did you mean {hint.group(1)}?)' if hint else ''}; the keys are those of "
        "configs/cifar10.py") from None


def _not_orbax_info(record) -> bool:
  # Orbax logs a dozen INFO lines per checkpoint; keep its warnings, drop the chatter.
  return record.levelno > logging.INFO or "/orbax/" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_not_orbax_info)
  try:
    # Before anything touches a device: the devices of a multi-process job are all processes'.
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (UserError, FloatingPointError) as e:
    _quiet_background_threads()
    raise SystemExit(f"error: {e}") from None
  except OSError as e:
    if e.errno not in _DISK_ERRNOS:
      raise
    _quiet_background_threads()
    raise SystemExit(f"error: cannot write {e.filename or FLAGS.workdir}: {e.strerror}; "
                     "free some space or fix the permissions, then run the same command "
                     "to resume") from None


def _quiet_background_threads() -> None:
  # After a failed save, Orbax's other writer threads and tasks keep failing, and log
  # tracebacks (or print them when garbage collected) while the process exits. The error
  # line already says what happened, so nothing more is written after it.
  logging.get_absl_handler().setLevel(std_logging.CRITICAL + 1)
  sys.unraisablehook = lambda unraisable: None

if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
