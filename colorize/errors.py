"""The one exception type for mistakes a user can fix (bad config, missing data, bad files).

`colorize.main`, `colorize` and `colorize.evaluate` print these as a single line instead of a
traceback; everything else is a bug and keeps its traceback.
"""
import argparse
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


def _is_closed_loop(unraisable) -> bool:
  return (isinstance(unraisable.exc_value, RuntimeError)
          and str(unraisable.exc_value) == "Event loop is closed")


def drop_closed_event_loop_reports() -> None:
  """Keeps "Event loop is closed" tracebacks off stderr; other unraisables are reported.

  After a failed restore, TensorStore's reads of the other arrays still finish, and hand
  their results to Orbax's event loop, which is closed by then: Python prints each as a
  traceback while the process exits, under the one-line error. Nothing is lost with them.
  The hook in place before is kept for everything else (so tests still see the rest).
  """
  previous = sys.unraisablehook
  if getattr(previous, "drops_closed_event_loops", False):
    return

  def hook(unraisable):
    if not _is_closed_loop(unraisable):
      previous(unraisable)

  hook.drops_closed_event_loops = True
  sys.unraisablehook = hook
