"""scripts/before_after.py: the README's figure from a trained run, and its one-line errors."""
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from colorize import train
from tests import helpers
from tests import process_helpers


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A tiny trained run (two steps of configs/test.py)."""
  path = tmp_path_factory.mktemp("run")
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(path))
  return path


def _run(*args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, "scripts/before_after.py", *args],
                        cwd=process_helpers.REPO, env=process_helpers.cpu_env(1),
                        capture_output=True, text=True, timeout=process_helpers.TIMEOUT)


@helpers.needs_cifar_subset
def test_the_figure_holds_the_cifar_test_images_and_the_photo(workdir, tmp_path):
  out = tmp_path / "figure.png"
  proc = _run(f"--workdir={workdir}", f"--data_dir={helpers.CIFAR_SUBSET}", f"--output={out}",
              "--first_cifar=9", "--num_cifar=2", "--zoom=2")
  assert proc.returncode == 0, proc.stderr[-2000:]
  figure = np.asarray(Image.open(out))
  # Three cells as wide as the widest panel (the 451x300 photo), a header, three rows.
  assert figure.shape == (22 + (64 + 6) * 2 + 300 + 6, 3 * 451 + 2 * 6, 3)
  test = tfds.data_source("cifar10", split="test", data_dir=str(helpers.CIFAR_SUBSET))
  for row in range(2):  # The third column: CIFAR-10's test image 9 + row, drawn 2x.
    y, x = 22 + row * 70, 2 * (451 + 6) + (451 - 64) // 2
    drawn = figure[y:y + 64, x:x + 64]
    assert np.array_equal(drawn, test[9 + row]["image"].repeat(2, 0).repeat(2, 1))


def test_an_unprepared_data_dir_is_one_line_and_downloads_nothing(workdir, tmp_path):
  data_dir = tmp_path / "tfds"
  proc = _run(f"--workdir={workdir}", f"--data_dir={data_dir}",
              f"--output={tmp_path / 'figure.png'}")
  # (tfds may log a warning first, as it looks for the dataset.)
  assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
  error = proc.stderr.strip().splitlines()[-1]
  assert error.startswith("error: 'cifar10' is not prepared in data_dir="), error
  assert not data_dir.exists()


def test_a_workdir_without_a_run_is_one_line(tmp_path):
  proc = _run(f"--workdir={tmp_path}", f"--data_dir={tmp_path}")
  assert proc.returncode == 1 and proc.stderr.startswith(f"error: {tmp_path}: no config.json")
  assert len(proc.stderr.strip().splitlines()) == 1
