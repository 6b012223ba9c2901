"""scripts/benchmark_inference.py: every measurement it promises, and one-line errors."""
import json
import subprocess
import sys

import pytest

from colorize import train
from configs import test as test_config
from tests import process_helpers


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A tiny trained run (two steps of configs/test.py)."""
  path = tmp_path_factory.mktemp("run")
  config = test_config.get_config()
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(path))
  return path


def _run(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "scripts/benchmark_inference.py", *args],
                        cwd=process_helpers.REPO, env=process_helpers.cpu_env(1),
                        capture_output=True, text=True, timeout=process_helpers.TIMEOUT)


def test_measures_the_model_and_each_size_end_to_end(workdir):
  proc = _run(f"--workdir={workdir}", "--sizes=8x8,20x12", "--batch=2", "--images=3",
              "--min_seconds=0")
  assert proc.returncode == 0, proc.stderr[-2000:]
  rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  assert [(r["measurement"], r["size"]) for r in rows] == [
      ("model", "8x8"), ("end_to_end", "8x8"), ("one_file", "8x8"), ("arrays", "8x8"),
      ("end_to_end", "20x12"), ("one_file", "20x12"), ("arrays", "20x12")]
  # Images per pass: the model's batch, the files, one file, the files padded to batches.
  assert [r["images"] for r in rows] == [2, 3, 1, 4, 3, 1, 4]
  for r in rows:
    assert r["images_per_s"] > 0 and r["repeats"] >= 3 and r["step"] == 2
    assert r["ms_per_image"] == pytest.approx(1000 / r["images_per_s"], rel=0.01, abs=1e-3)


@pytest.mark.parametrize("args, error", [
    (["--workdir=nope"], "error: nope: no config.json"),
    (["--workdir=nope", "--sizes=1024x"], "error: argument --sizes: '1024x': give WIDTHxHEIGHT"),
    (["--workdir=nope", "--batch=0"], "error: argument --batch: '0': give a positive integer"),
])
def test_bad_input_is_one_line(args, error):
  proc = _run(*args)
  assert proc.returncode in (1, 2) and error in proc.stderr, proc.stderr
  assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
