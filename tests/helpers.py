"""Small helpers shared by the tests: the tiny test config, a run's metrics.jsonl, a deadline."""
import contextlib
import json
import pathlib
import signal

import ml_collections

from configs import test as test_config


def config(**overrides) -> ml_collections.ConfigDict:
  """configs/test.py with `overrides` applied (top-level keys)."""
  c = test_config.get_config()
  c.update(overrides)
  return c


def jsonl(workdir: pathlib.Path) -> list[dict]:
  """The records of `workdir`/metrics.jsonl, in order."""
  return [json.loads(l) for l in (workdir / "metrics.jsonl").read_text().splitlines()]


class Blocked(BaseException):
  """Raised by `deadline`; not an OSError, so code that handles failed opens cannot hide it."""


@contextlib.contextmanager
def deadline(seconds: int = 60):
  """Fails a test that blocks (e.g. opening a FIFO) instead of hanging the suite."""
  def expire(signum, frame):
    raise Blocked(f"blocked for {seconds} s")
  previous = signal.signal(signal.SIGALRM, expire)
  signal.alarm(seconds)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)
