"""On a terminal a run shows one live progress line and the events that matter; with
--verbosity (or without a terminal, as every other test's log file shows) absl logs every record.

The terminal is a real pseudo-terminal (the pty module) on the child's stdout and stderr.
"""
import os
import pty
import re
import select
import subprocess
import sys
import time

from tests import process_helpers

_FLAGS = ("--config=configs/test.py", "--config.log_every_steps=2",
          "--config.eval_every_steps=4", "--config.checkpoint_every_steps=4")
_ABSL_RECORD = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")  # absl's "I1129 22:07:47.21 ..." prefix.


def _on_terminal(args: list[str]) -> str:
  """Runs colorize.main with stdout and stderr on a pseudo-terminal; returns what it wrote."""
  leader, follower = pty.openpty()
  proc = subprocess.Popen([sys.executable, "-m", "colorize.main", *args],
                          cwd=process_helpers.REPO, env=process_helpers.cpu_env(1),
                          stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
  os.close(follower)
  output, deadline = b"", time.monotonic() + process_helpers.TIMEOUT
  try:
    while time.monotonic() < deadline:
      if select.select([leader], [], [], 0.5)[0]:
        try:
          chunk = os.read(leader, 65536)
        except OSError:  # The child closed the terminal (Linux reports EIO).
          break
        if not chunk:
          break
        output += chunk
      elif proc.poll() is not None:
        break
    assert proc.wait(timeout=10) == 0, output.decode()[-3000:]
  finally:
    if proc.poll() is None:
      proc.kill()
    os.close(leader)
  return output.decode()


def _screen_lines(output: str) -> list[str]:
  """The lines left on the screen: each line's text after its last carriage return."""
  lines = output.replace("\r\n", "\n").split("\n")
  return [line.split("\r")[-1].replace("\x1b[K", "") for line in lines if line.strip()]


def test_terminal_shows_progress_and_events_only(tmp_path):
  workdir = tmp_path / "run"
  output = _on_terminal([*_FLAGS, f"--workdir={workdir}", "--config.num_train_steps=8"])
  lines = _screen_lines(output)
  assert not [line for line in lines if _ABSL_RECORD.match(line)], lines
  # The progress line, redrawn in place after each call (of 2 iterations: log_every_steps=2).
  assert "\r\x1b[Kstep 2/8 " in output
  text = "\n".join(lines)
  for event in ("Step 4 eval: eval_psnr", "Saving checkpoint step 4", "Step 8 eval: eval_psnr",
                "Saving checkpoint step 8", f"Outputs in {workdir}"):
    assert event in text, text
  assert re.search(r"^step 8/8  [\d.]+ steps/s  ETA 0:00  critic [-\d.]+  generator [\d.]+  "
                   r"l1 [\d.]+$", lines[-1]), lines[-1]
  assert len(lines) <= 8, lines  # Four events, the outputs, the last progress line.

  output = _on_terminal([*_FLAGS, f"--workdir={workdir}", "--config.num_train_steps=10"])
  assert "Resuming from checkpoint at step 8" in "\n".join(_screen_lines(output))


def test_verbosity_on_a_terminal_keeps_every_record(tmp_path):
  output = _on_terminal([*_FLAGS, f"--workdir={tmp_path}", "--config.num_train_steps=2",
                         "--verbosity=0"])
  records = [line for line in _screen_lines(output) if _ABSL_RECORD.match(line)]
  assert any("Training steps 0..2" in line for line in records), records
  assert "\x1b[K" not in output
