"""Training, evaluation and colorizing run where TensorFlow cannot be imported.

As on a bare accelerator image: a sitecustomize on the children's PYTHONPATH hides
`tensorflow` from every import finder, so `import tensorflow` raises ModuleNotFoundError and
`importlib.util.find_spec("tensorflow")` is None (libraries that probe for it take their
TF-free paths). TensorFlow is needed only to *prepare* a tfds dataset the first time.
"""
import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from tests import helpers
from tests import process_helpers

REPO = process_helpers.REPO

_HIDE_TENSORFLOW = '''
import sys

class _WithoutTensorFlow:
  """Wraps an import finder so that it finds no tensorflow module."""

  def __init__(self, finder):
    self._finder = finder

  def find_spec(self, name, path=None, target=None):
    if name.partition(".")[0] == "tensorflow":
      return None
    return self._finder.find_spec(name, path, target)

  def __getattr__(self, name):
    return getattr(self._finder, name)

sys.meta_path[:] = [_WithoutTensorFlow(f) for f in sys.meta_path]
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  site = tmp_path_factory.mktemp("without_tensorflow")
  (site / "sitecustomize.py").write_text(_HIDE_TENSORFLOW)
  path = os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])
  return process_helpers.cpu_env(1, PYTHONPATH=path)


def _run(args, env, **kwargs):
  proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=process_helpers.TIMEOUT, **kwargs)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def test_tensorflow_cannot_be_imported_there(env):
  proc = subprocess.run(
      [sys.executable, "-c", "import importlib.util; "
       "assert importlib.util.find_spec('tensorflow') is None; import tensorflow"],
      env=env, capture_output=True, text=True, timeout=60)
  assert proc.returncode != 0
  assert "ModuleNotFoundError: No module named 'tensorflow'" in proc.stderr


def test_train_evaluate_and_colorize_without_tensorflow(tmp_path, env):
  workdir = tmp_path / "run"
  _run(["-m", "colorize.main", "--config=configs/test.py", f"--workdir={workdir}",
        "--config.steps_per_call=2", "--config.data_on_device=True"], env)
  assert (workdir / "checkpoints" / "4").is_dir()
  assert list(workdir.glob("events.out.tfevents.*"))

  _run(["-m", "colorize.evaluate", f"--workdir={workdir}", "--num_images=16"], env)
  assert list(workdir.glob("eval/4/metrics.json"))

  photo = tmp_path / "photo.png"
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), np.uint8)).save(photo)
  _run(["-m", "colorize.colorize", f"--workdir={workdir}", f"--input={photo}",
        f"--output={tmp_path / 'out'}"], env)
  assert len(list((tmp_path / "out").iterdir())) == 1


@helpers.needs_cifar_subset
def test_prepared_tfds_dataset_trains_without_tensorflow(tmp_path, env):
  # tfds.data_source reads the prepared array_record files without TensorFlow.
  _run(["-m", "colorize.main", "--config=configs/test.py", f"--workdir={tmp_path / 'run'}",
        "--config.dataset=cifar10", f"--config.data_dir={helpers.CIFAR_SUBSET}",
        "--config.train_split=train[:90%]", "--config.eval_split=train[90%:]",
        "--config.image_size=32", "--config.num_train_steps=2",
        "--config.data_on_device=True"], env)
  assert (tmp_path / "run" / "checkpoints" / "2").is_dir()
