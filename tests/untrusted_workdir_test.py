"""A workdir is data: reading someone else's never runs their code or writes where they say.

The attacks of issue 13, each on a copy of a tiny trained run: a config.json that names the
compilation cache (whose entries JAX loads and runs), links planted where `evaluate` and the
trainer write, a config string that would start a new line of table.md; and the mode of what
is written (the umask's, not a temporary file's 0o600).
"""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from colorize import cli
from colorize import evaluate
from colorize import restore
from colorize import train
from colorize import validation
from colorize.errors import UserError
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """A tiny trained workdir (checkpoint at step 2)."""
  path = tmp_path_factory.mktemp("run")
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(path))
  return path


def _copy(run, tmp_path, **config_json):
  """A copy of the run, with config.json's values replaced by `config_json`'s."""
  copy = tmp_path / "run"
  shutil.copytree(run, copy)
  saved = json.loads((copy / "config.json").read_text())
  (copy / "config.json").write_text(json.dumps({**saved, **config_json}))
  return copy


def _photo(folder):
  folder.mkdir(parents=True, exist_ok=True)
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "a.png")
  return folder / "a.png"


@pytest.mark.parametrize("command", ["colorize.colorize", "colorize.evaluate"])
def test_config_json_never_chooses_the_compilation_cache(run, tmp_path, command):
  planted, mine = tmp_path / "planted", tmp_path / "mine"
  copy = _copy(run, tmp_path, compilation_cache_dir=str(planted))
  flags = {"colorize.colorize": [f"--input={_photo(tmp_path / 'in')}",
                                 f"--output={tmp_path / 'out'}"],
           "colorize.evaluate": ["--num_images=8"]}[command]
  result = subprocess.run(
      [sys.executable, "-m", command, f"--workdir={copy}", *flags], cwd=REPO,
      env={**os.environ, "PYTHONPATH": str(REPO), "JAX_COMPILATION_CACHE_DIR": str(mine)},
      capture_output=True, text=True, timeout=240)
  assert result.returncode == 0, result.stderr[-3000:]
  assert not planted.exists()
  assert os.listdir(mine)  # The user's cache is the one used.


def test_read_config_takes_only_validated_model_and_data_keys(run, tmp_path):
  copy = _copy(run, tmp_path, compilation_cache_dir="/planted", data_threads=10**6)
  config = restore.read_config(str(copy))
  defaults = validation.reference()  # This machine's, not the workdir's.
  assert config.compilation_cache_dir == defaults.compilation_cache_dir
  assert config.data_threads == defaults.data_threads
  assert config.model.width == 4 and config.dataset == "shapes"
  saved = json.loads((copy / "config.json").read_text())
  for key, value, says in [("model", {**saved["model"], "norm": "evil"}, "config.model.norm"),
                           ("image_size", "8", "config.image_size='8' is invalid"),
                           ("loss", None, "config.loss=None is invalid")]:
    (copy / "config.json").write_text(json.dumps({**saved, key: value}))
    with pytest.raises(UserError, match=rf"^{copy / 'config.json'}: .*{says}"):
      restore.read_config(str(copy))


def test_evaluate_replaces_planted_links_and_escapes_config_strings(run, tmp_path, capsys):
  copy = _copy(run, tmp_path, data_dir="x\nrm -rf ~ | <b>")
  victims = {name: tmp_path / f"victim_{name}" for name in ("metrics.json", "table.md")}
  (copy / "eval" / "2").mkdir(parents=True)
  for name, victim in victims.items():
    victim.write_text("precious\n")
    (copy / "eval" / "2" / name).symlink_to(victim)
  assert evaluate.run([f"--workdir={copy}", "--num_images=8"]) == 0
  assert all(victim.read_text() == "precious\n" for victim in victims.values())
  table = copy / "eval" / "2" / "table.md"
  assert not table.is_symlink()
  text = table.read_text()
  assert "data_dir=x\\nrm -rf ~ \\| \\<b\\>." in text
  assert not any(line.startswith("rm") for line in text.splitlines())
  capsys.readouterr()


def test_evaluate_refuses_an_eval_folder_linked_outside_the_workdir(run, tmp_path, capsys):
  copy = _copy(run, tmp_path)
  outside = tmp_path / "outside"
  outside.mkdir()
  (copy / "eval").symlink_to(outside)
  assert evaluate.run([f"--workdir={copy}", "--num_images=8"]) == 2
  assert os.listdir(outside) == []
  [line] = capsys.readouterr().err.strip().splitlines()
  assert line.startswith(f"error: refusing to write {copy / 'eval' / '2'}") and (
      "leads outside" in line and "remove the link" in line)


def test_a_planted_fifo_for_the_colour_transport_is_refused_not_read(run, tmp_path, capsys):
  copy = _copy(run, tmp_path)
  (copy / "eval" / "2").mkdir(parents=True)
  os.mkfifo(copy / "eval" / "2" / "transport.npz")  # Reading it would block forever.
  assert evaluate.run([f"--workdir={copy}", "--num_images=8", "--transport=0.5"]) == 2
  [line] = capsys.readouterr().err.strip().splitlines()
  assert "transport.npz: not a readable colour transport" in line and "not a regular file" in line
  assert "delete it" in line


def test_training_writes_no_file_a_planted_link_points_to(tmp_path):
  workdir, outside = tmp_path / "run", tmp_path / "outside"
  workdir.mkdir()
  outside.mkdir()
  (workdir / "metrics.jsonl").symlink_to(outside / "authorized_keys")  # Dangling.
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(workdir))
  assert os.listdir(outside) == []
  assert not (workdir / "metrics.jsonl").is_symlink() and helpers.jsonl(workdir)
  (workdir / "samples").rename(workdir / "samples_before")
  (workdir / "samples").symlink_to(outside)
  with pytest.raises(UserError, match="refusing to write .*samples.* leads outside"):
    train.train_and_evaluate(helpers.config(num_train_steps=4), str(workdir))
  assert os.listdir(outside) == []


@pytest.fixture
def umask_027():
  previous = os.umask(0o027)
  yield
  os.umask(previous)


def test_outputs_get_the_mode_a_plain_open_gives(run, tmp_path, capsys, umask_027):
  del umask_027
  assert cli.run([f"--workdir={run}", f"--input={_photo(tmp_path / 'in')}",
                  f"--output={tmp_path / 'out'}"]) == 0
  copy = _copy(run, tmp_path)
  assert evaluate.run([f"--workdir={copy}", "--num_images=8"]) == 0
  trained = tmp_path / "trained"
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(trained))
  written = [tmp_path / "out" / "a.png", *(copy / "eval" / "2").iterdir(),
             trained / "config.json", trained / "metrics.jsonl", *(trained / "plots").iterdir(),
             *(trained / "samples").iterdir()]
  assert {p.name: oct(p.stat().st_mode & 0o777) for p in written} == {
      p.name: "0o640" for p in written}
  capsys.readouterr()
