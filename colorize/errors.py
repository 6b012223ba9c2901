"""The one exception type for mistakes a user can fix (bad config, missing data, bad files).

`colorize.main`, `colorize` and `colorize.evaluate` print these as a single line instead of a
traceback; everything else is a bug and keeps its traceback.
"""
import argparse
import logging
import os
import sys


class UserError(Exception):
  """A problem with the user's input; the message names the key/file and the fix."""


def first_line(error: BaseException, limit: int = 300) -> str:
  """The start of an error's message: enough to say what failed, short enough for one line.

  Args:
    error: any exception.
    limit: the most characters kept.

  Returns:
    The first line of its message, or its type's name when the message is empty.
  """
  return str(error).strip().split("\n")[0][:limit] or type(error).__name__


class OneLineParser(argparse.ArgumentParser):
  """argparse's parser, whose usage errors are one line (`prog: error: ...`), exit status 2.

  (argparse prints its whole usage text first; `--help` still shows it.)
  """

  def error(self, message: str):
    self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _is_closed_loop(error: BaseException) -> bool:
  return isinstance(error, RuntimeError) and str(error) == "Event loop is closed"


# The checkpoint directories being restored (as given and resolved): see below.
_RESTORED_DIRECTORIES: set[str] = set()


def _not_a_leftover_read(record: logging.LogRecord) -> bool:
  message = record.getMessage()
  return not (message.startswith("Task exception was never retrieved")
              and any(directory in message for directory in _RESTORED_DIRECTORIES))


def drop_failed_restore_reports(checkpoints: str) -> None:
  """Keeps the leftovers of a failed Orbax restore off stderr; everything else is reported.

  Call it before restoring from `checkpoints` (a directory). When one array cannot be read,
  TensorStore's reads of the others still finish, and Python reports them at any moment after
  the failure: in the middle of the one-line error, or of a resumed run's log. Those that end
  on Orbax's closed event loop come as "Event loop is closed" from TensorStore's threads,
  through sys.unraisablehook or sys.excepthook; those that fail on the damaged files as
  asyncio's "Task exception was never retrieved", naming a file under `checkpoints`. Nothing
  is lost with them: the restore's own error says what failed. The hooks in place before
  handle every other report (so pytest still sees the rest), and asyncio's logger keeps every
  other record.

  Args:
    checkpoints: the directory of the checkpoints about to be restored.
  """
  _RESTORED_DIRECTORIES.update({os.path.abspath(checkpoints), os.path.realpath(checkpoints)})
  logging.getLogger("asyncio").addFilter(_not_a_leftover_read)  # Once: a set of filters.
  unraisable_hook, except_hook = sys.unraisablehook, sys.excepthook

  def unraisable(report):
    if not _is_closed_loop(report.exc_value):
      unraisable_hook(report)

  def uncaught(kind, value, traceback):
    if not _is_closed_loop(value):
      except_hook(kind, value, traceback)

  # Each hook is wrapped once, however often this is called (pytest resets one of them).
  if not hasattr(unraisable_hook, "drops_closed_event_loops"):
    unraisable.drops_closed_event_loops = True
    sys.unraisablehook = unraisable
  if not hasattr(except_hook, "drops_closed_event_loops"):
    uncaught.drops_closed_event_loops = True
    sys.excepthook = uncaught
