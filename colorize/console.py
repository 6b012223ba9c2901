"""What a run shows: on a terminal, one live progress line and the events that matter.

`use_terminal()` (colorize.main calls it when stderr is a TTY and --verbosity was not given)
replaces absl's line-per-record output on stderr by

* a progress line redrawn in place: step/total, steps/s, ETA and the main losses;
* the events: records logged with `extra=EVENT` (resumed from step N, checkpoint saved, eval
  results, where the outputs are), and every warning and error.

Without it (a log file, a cluster job, --verbosity given) absl logs every record on its own
line, as before; `Progress` then puts steps/s and the ETA in the log line of each log step.
"""
import logging
import shutil
import sys
import time

from absl import logging as absl_logging

EVENT = {"event": True}  # logging.info(..., extra=EVENT): a record the terminal shows.
_MAIN_LOSSES = {"critic_loss": "critic", "generator_loss": "generator", "l1": "l1"}
_REDRAW_SECONDS = 0.1

_terminal = None  # The installed _TerminalHandler, if any.


def _duration(seconds: float) -> str:
  minutes, seconds = divmod(int(seconds), 60)
  hours, minutes = divmod(minutes, 60)
  return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
  """Steps/s and the time left, measured from the end of this process's first call.

  (The first call includes compilation, which would skew both.)
  """

  def __init__(self, total_steps: int):
    self._total = total_steps
    self._origin = None  # (step, time) at the first update.
    self._losses = ""

  def rate(self, step: int) -> float:
    """Steps/s since the first update (0 until there are two)."""
    if self._origin is None:
      return 0.0
    first_step, first_time = self._origin
    elapsed = time.monotonic() - first_time
    return (step - first_step) / elapsed if elapsed > 0 and step > first_step else 0.0

  def describe(self, step: int) -> str:
    """"step 120/500  12.3 steps/s  ETA 0:31"."""
    rate = self.rate(step)
    eta = _duration((self._total - step) / rate) if rate else "?"
    return f"step {step}/{self._total}  {rate:.3g} steps/s  ETA {eta}"

  def update(self, step: int, scalars: dict[str, float] | None = None) -> None:
    """Notes that `step` is done; redraws the terminal's progress line if it is shown.

    Args:
      step: iterations done.
      scalars: the metrics of the log step just written, whose main losses the line shows.
    """
    if self._origin is None:
      self._origin = (step, time.monotonic())
    if scalars is not None:
      self._losses = "  ".join(f"{short} {scalars[k]:.4g}" for k, short in _MAIN_LOSSES.items()
                               if k in scalars)
    if _terminal is not None:
      _terminal.show_progress(f"{self.describe(step)}  {self._losses}".rstrip())


class _TerminalHandler(logging.Handler):
  """Writes event and warning records above the progress line it keeps at the bottom."""

  def __init__(self, stream):
    super().__init__(logging.INFO)
    self._stream = stream
    self._line = ""
    self._drawn = 0.0
    self.setFormatter(logging.Formatter("%(message)s"))

  def filter(self, record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or getattr(record, "event", False)

  def emit(self, record: logging.LogRecord) -> None:
    message = self.format(record)
    if record.levelno >= logging.WARNING:
      message = f"{record.levelname.lower()}: {message}"
    self._write(f"\r\x1b[K{message}\n{self._fitted()}")

  def show_progress(self, line: str) -> None:
    self._line = line
    if time.monotonic() - self._drawn >= _REDRAW_SECONDS:
      self._write(f"\r\x1b[K{self._fitted()}")

  def finish(self) -> None:
    """Leaves the last progress line on the screen and moves below it."""
    if self._line:
      self._write(f"\r\x1b[K{self._fitted()}\n")
    self._line = ""

  def _fitted(self) -> str:
    return self._line[:shutil.get_terminal_size().columns - 1]

  def _write(self, text: str) -> None:
    self._stream.write(text)
    self._stream.flush()
    self._drawn = time.monotonic()


def use_terminal() -> None:
  """Shows the progress line and the events on stderr instead of every record."""
  global _terminal
  if _terminal is not None:
    return
  _terminal = _TerminalHandler(sys.stderr)
  # absl's handler sits on the root logger and writes every record of every library; it is
  # muted, and ours, also on the root logger, shows the few that matter.
  absl_logging.get_absl_handler().setLevel(logging.CRITICAL + 1)
  logging.getLogger().addHandler(_terminal)
  logging.captureWarnings(True)  # Python warnings too would break the progress line.


def finish(mute: bool = False) -> None:
  """Ends the progress line, so that what follows (the shell prompt) starts below it.

  Args:
    mute: also show nothing more (after a one-line error, other threads' complaints would
      only bury it).
  """
  global _terminal
  if _terminal is None:
    return
  _terminal.finish()
  if mute:
    logging.getLogger().removeHandler(_terminal)
    _terminal = None
