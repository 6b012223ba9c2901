"""Small helpers shared by the tests: the tiny test config, and a run's metrics.jsonl."""
import json
import pathlib

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
