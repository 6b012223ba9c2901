r"""Trains a colorizer: `python -m colorize.main --config=configs/cifar10.py --workdir=runs/x`.

Any config key can be overridden: `--config.batch_size=64 --config.model.norm=instance`.
On a TPU pod slice or under SLURM, run the same command in every process: JAX's distributed
runtime is started from what the environment says (`colorize.distributed`); elsewhere, give
each process `--coordinator_address=host:port --num_processes=N --process_id=I`.
Mistakes a user can fix (bad config values, missing data, an unwritable workdir) end with one
line, not a traceback. Run the same command again to resume; after SIGTERM or a first Ctrl-C the
run saves a checkpoint and exits with status 0 (a second Ctrl-C aborts at once). One run at a
time holds a workdir: a second one stops, naming the first's host and process id. On a
terminal the run shows one progress line and the events that matter (`colorize.console`);
with --verbosity, or when stderr is not a terminal (a log file, a cluster job), absl logs
every record on its own line.
"""
import errno
import logging as std_logging
import os
import sys
import threading
import traceback

from absl import app
from absl import flags
from absl import logging
import jax
import ml_collections
from ml_collections import config_flags

from colorize import console
from colorize import distributed
from colorize import train
from colorize import validation
from colorize import errors
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


def _config_file_error(argv: list[str], error: BaseException) -> str | None:
  """The one line for a --config file that cannot be loaded or raises; None for other errors."""
  spec = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), "")
  path = os.path.abspath(spec.split(":", 1)[0])
  # absl re-raises "from" the parser's error, and config_flags raises a copy of the file's
  # error while handling it: the file's own error, with its traceback, is at the chain's end.
  while (error.__cause__ or error.__context__) is not None:
    error = error.__cause__ or error.__context__
  lines = [f.lineno for f in traceback.extract_tb(error.__traceback__)
           if os.path.abspath(f.filename) == path]
  if lines:
    return (f"--config={spec}: {path}, line {lines[-1]}: {type(error).__name__}: "
            f"{errors.first_line(error)}; fix the config file")
  if isinstance(error, OSError):
    return (f"--config={spec}: cannot load {path} "
            f"({error.strerror or os.strerror(errno.ENOENT)}); give a config file, e.g. "
            "--config=configs/cifar10.py")
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with one-line errors: a wrong value, an unknown config key, a config
  file that is missing, raises or does not return a config."""
  try:
    validation.check_override_keys(argv)
    remaining = FLAGS(argv)
    config = FLAGS.config
    if not isinstance(config, ml_collections.ConfigDict):
      # config_flags' stand-in for a file that failed to load raises the file's error here.
      getattr(config, "to_dict", None)
      raise SystemExit(f"error: --config: get_config() returned a {type(config).__name__}, "
                       "not an ml_collections.ConfigDict; see configs/cifar10.py")
    return remaining
  except SystemExit:
    raise
  except UserError as e:
    raise SystemExit(f"error: {e}") from None
  except Exception as e:  # pylint: disable=broad-exception-caught
    config_error = _config_file_error(argv, e)
    if config_error is not None:
      raise SystemExit(f"error: {config_error}") from None
    if isinstance(e, flags.Error):  # E.g. "flag --config.batch_size=abc: invalid literal".
      raise SystemExit(f"error: {e}") from None
    raise


def _not_orbax_info(record) -> bool:
  # Orbax logs a dozen INFO lines per checkpoint; keep its warnings, drop the chatter.
  return record.levelno > std_logging.INFO or "/orbax/" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # (On absl's python_handler: ABSLHandler passes records on to it without applying filters.)
  logging.get_absl_handler().python_handler.addFilter(_not_orbax_info)
  if sys.stderr.isatty() and not FLAGS["verbosity"].present:
    console.use_terminal()
  try:
    # Before anything touches a device: the devices of a multi-process job are all processes'.
    distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id)
    logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
                 jax.devices())
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (UserError, FloatingPointError) as e:
    _exit_with_one_line(f"error: {e}")
  except OSError as e:
    if e.errno not in _DISK_ERRNOS:
      raise
    _exit_with_one_line(f"error: cannot write {e.filename or FLAGS.workdir}: {e.strerror}; "
                        "free some space or fix the permissions, then run the same command "
                        "to resume")
  finally:
    console.finish()


def _exit_with_one_line(message: str) -> None:
  """Ends the run, which saved what it could, with `message` as the last line on stderr."""
  # After a failed save, Orbax's other writer threads and tasks keep failing, and log
  # tracebacks (or print them when garbage collected) while the process exits. The error
  # line already says what happened, so nothing more is written after it.
  logging.get_absl_handler().setLevel(std_logging.CRITICAL + 1)
  console.finish(mute=True)
  sys.unraisablehook = lambda unraisable: None
  # TensorBoard's writer thread, too, fails once the interpreter closes its queue.
  threading.excepthook = lambda args: None
  print(message, file=sys.stderr)
  sys.stdout.flush()
  sys.stderr.flush()
  # Orbax's failed reads and writes can still be garbage collected while the interpreter shuts
  # down, when no hook silences their tracebacks any more: so the process ends here.
  os._exit(1)  # pylint: disable=protected-access


if __name__ == "__main__":
  app.run(main, flags_parser=_parse_flags)
