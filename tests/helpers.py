"""Small helpers shared by the tests: the tiny test config, a run's metrics.jsonl, a deadline,
the offline CIFAR-10 subset."""
import contextlib
import json
import pathlib
import signal

import ml_collections
import pytest

from configs import test as test_config

# The offline 10% of CIFAR-10 that tfds prepared, beside the repository on the development
# machine and in CI; tests that read it are skipped where it is absent.
CIFAR_SUBSET = (pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10_subset"
                / "tfds")
needs_cifar_subset = pytest.mark.skipif(not CIFAR_SUBSET.is_dir(),
                                        reason=f"no offline CIFAR-10 subset at {CIFAR_SUBSET}")


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
