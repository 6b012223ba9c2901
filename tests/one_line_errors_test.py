"""The one-line errors the commands promise, each made as a user would make it.

Every case runs a real command in a subprocess (`python -m colorize.main`, the `colorize`
console script, `python -m colorize.evaluate`) from an empty current directory, and checks
its exit status and that stderr holds exactly one line, naming the file or key and the fix,
with no traceback (nor Orbax's "Event loop is closed" ones after a damaged checkpoint). The
current directory must stay empty: a failed start writes nothing (the trainer's workdir is
`run` there, unless a case prepares one elsewhere).

Log lines are not error output: absl's and TensorFlow's (`I1129 21:50:23.1 ...`) are left out
before the lines are counted.
"""
import concurrent.futures
import dataclasses
import logging
import os
import pathlib
import re
import shutil
import subprocess
import sys
import types
from typing import Callable

import pytest
from PIL import Image
import numpy as np

from colorize import errors
from colorize import train
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "test.py")
TFDS = helpers.CIFAR_SUBSET / "cifar10" / "3.0.2"
_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d|^WARNING: All log messages before absl")
_PARALLEL = 3  # Commands at once: each imports JAX (and TF for the trainer) on its own.
_TIMEOUT = 240  # Seconds per command; generous, the machine is shared.


@dataclasses.dataclass(frozen=True)
class Case:
  """A mistake: the command line (given a scratch folder), its exit status, what it says."""
  command: Callable[[pathlib.Path, pathlib.Path], list[str]]  # (scratch, trained run) -> argv.
  status: int
  says: tuple[str, ...]  # Substrings of the one line: the file or key, and the fix.
  needs_tfds: bool = False  # Damages a copy of the CIFAR-10 subset in ../shared.


def _main(*flags):
  return [sys.executable, "-m", "colorize.main", *flags]


def _colorize(*flags):
  return [os.path.join(os.path.dirname(sys.executable), "colorize"), *flags]


def _evaluate(*flags):
  return [sys.executable, "-m", "colorize.evaluate", *flags]


def _write(path: pathlib.Path, text: str) -> str:
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  return str(path)


def _copy_run(run: pathlib.Path, scratch: pathlib.Path) -> pathlib.Path:
  copy = scratch / "run"
  shutil.copytree(run, copy)
  return copy


def _not_an_object(run, scratch):
  copy = _copy_run(run, scratch)
  (copy / "config.json").write_text("[1, 2]")
  return copy


def _checkpoints_a_file(scratch):
  workdir = scratch / "run"
  _write(workdir / "checkpoints", "not a folder")
  return workdir


def _damaged(run, scratch):
  """A copy of the run whose newest checkpoint has every data file emptied.

  (Cut in half, a file may still hold all of the generator's arrays: Orbax spreads the arrays
  over a varying number of files.)
  """
  copy = _copy_run(run, scratch)
  for path in (copy / "checkpoints" / "2" / "default" / "ocdbt.process_0" / "d").iterdir():
    os.truncate(path, 0)
  return copy


def _tfds_copy(scratch, damage) -> str:
  """A data_dir with the CIFAR-10 subset: links to its files, and `damage`'s copy of one."""
  version = scratch / "tfds" / "cifar10" / "3.0.2"
  version.mkdir(parents=True)
  for path in TFDS.iterdir():
    (version / path.name).symlink_to(path)
  damage(version)
  return str(scratch / "tfds")


def _truncated_array_record(version):
  name = "cifar10-test.array_record-00000-of-00001"
  data = (version / name).read_bytes()
  (version / name).unlink()
  (version / name).write_bytes(data[:len(data) // 2])


def _garbled_dataset_info(version):
  (version / "dataset_info.json").unlink()
  (version / "dataset_info.json").write_text('{"name": "cifar10", garbled')


def _photo(scratch):
  path = scratch / "photo.png"
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
  return str(path)


_RAISES = "def get_config():\n  raise RuntimeError(1)\n"
_RETURNS_42 = "def get_config():\n  return 42\n"

CASES = {
    "config file missing": Case(
        lambda s, r: _main(f"--config={s / 'missing.py'}", "--workdir=run"), 1,
        ("--config=", "missing.py", "No such file", "give a config file")),
    "config file raises": Case(
        lambda s, r: _main(f"--config={_write(s / 'raises.py', _RAISES)}", "--workdir=run"), 1,
        ("raises.py, line 2: RuntimeError: 1", "fix the config file")),
    "get_config returns no config": Case(
        lambda s, r: _main(f"--config={_write(s / 'int.py', _RETURNS_42)}", "--workdir=run"), 1,
        ("get_config() returned a int", "configs/cifar10.py")),
    "seed too large, found before the workdir is made": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--config.seed=99999999999999999999",
                           "--workdir=run"), 1,
        ("config.seed=99999999999999999999", "below 2**32")),
    "config.json not an object": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--config.num_train_steps=4",
                           f"--workdir={_not_an_object(r, s)}"), 1,
        ("config.json", "a JSON list, not an object", "use a new --workdir")),
    "checkpoints is a file": Case(
        lambda s, r: _main(f"--config={CONFIG}", f"--workdir={_checkpoints_a_file(s)}"), 1,
        ("checkpoints is not a directory", "move it out")),
    "truncated array_record": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--config.dataset=cifar10",
                           f"--config.data_dir={_tfds_copy(s, _truncated_array_record)}",
                           "--config.train_split=train", "--config.eval_split=test",
                           "--workdir=run"), 1,
        ("'cifar10'", "data_dir=", "damaged or truncated", "prepare it again"), True),
    "garbled dataset_info.json": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--config.dataset=cifar10",
                           f"--config.data_dir={_tfds_copy(s, _garbled_dataset_info)}",
                           "--workdir=run"), 1,
        ("'cifar10'", "data_dir=", "damaged or truncated", "prepare it again"), True),
    "coordinator address without a port": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--workdir=run",
                           "--coordinator_address=localhost", "--num_processes=2",
                           "--process_id=0"), 1,
        ("--coordinator_address=localhost has no port", "host:port")),
    "empty workdir": Case(
        lambda s, r: _main(f"--config={CONFIG}", "--workdir="), 1,
        ("--workdir is empty", "give the run's directory")),
    "dangling symlink workdir": Case(
        lambda s, r: _main(f"--config={CONFIG}", f"--workdir={_dangling(s)}"), 1,
        ("is a symbolic link to", "which does not exist", "fix the link")),
    "colorize: batch size 10**12": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", f"--batch_size={10**12}"), 2,
        (f"--batch_size={10**12}", "give 1..1024")),
    "colorize: negative chroma gain": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", "--chroma_gain=-0.5"), 2,
        ("--chroma_gain", "'-0.5'", "give a finite number >= 0")),
    "colorize: transport beyond 1": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", "--transport=1.5"), 2,
        ("--transport", "'1.5'", "give a number from 0")),
    "colorize: a transport by class for a run without a classifier": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", "--transport=0.5",
                               "--transport_by_class"), 2,
        ("a colour transport by class needs", "leave out --transport_by_class")),
    "colorize: a temperature for a regression run": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", "--temperature=0.2"), 2,
        ("a temperature (0.2) applies to a classification head", "leave it out")),
    "colorize: zero temperature": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}", "--temperature=0"), 2,
        ("--temperature", "'0'", "give a finite number > 0")),
    "colorize: empty output": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}", "--output="), 2,
        ("--output is empty",)),
    "colorize: output is a file, found before colorizing": Case(
        lambda s, r: _colorize(f"--workdir={r}", f"--input={_photo(s)}",
                               f"--output={_write(s / 'file', '')}"), 2,
        ("--output=", "is not a folder", "give a folder")),
    "colorize: config.json not an object": Case(
        lambda s, r: _colorize(f"--workdir={_not_an_object(r, s)}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}"), 2,
        ("config.json holds a JSON list, not an object", "damaged")),
    "colorize: damaged checkpoint": Case(
        lambda s, r: _colorize(f"--workdir={_damaged(r, s)}", f"--input={_photo(s)}",
                               f"--output={s / 'out'}"), 2,
        ("cannot restore checkpoint 2", "--step picks another")),
    "evaluate: size without a bound": Case(
        lambda s, r: _evaluate(f"--workdir={r}", f"--images={s}", "--size=100000"), 2,
        ("--size=100000", "give 1..1024")),
    "evaluate: batch size 10**12": Case(
        lambda s, r: _evaluate(f"--workdir={r}", f"--batch_size={10**12}"), 2,
        (f"--batch_size={10**12}", "give 1..1024")),
    "evaluate: damaged checkpoint": Case(
        lambda s, r: _evaluate(f"--workdir={_damaged(r, s)}", "--num_images=8"), 2,
        ("cannot restore checkpoint 2", "--step picks another")),
}


def _dangling(scratch):
  link = scratch / "run"
  link.symlink_to(scratch / "nowhere")
  return link


@pytest.fixture(scope="module")
def results(tmp_path_factory):
  """Every case's (stderr lines, exit status, files left in its current directory)."""
  run = tmp_path_factory.mktemp("trained")
  train.train_and_evaluate(helpers.config(num_train_steps=2, checkpoint_every_steps=1),
                           str(run))
  env = {**os.environ, "PYTHONPATH": str(REPO)}

  def attempt(name):
    if CASES[name].needs_tfds and not TFDS.exists():
      return None
    scratch = tmp_path_factory.mktemp("case")
    cwd = tmp_path_factory.mktemp("cwd")
    result = subprocess.run(CASES[name].command(scratch, run), cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=_TIMEOUT)
    lines = [l for l in result.stderr.splitlines() if l.strip() and not _LOG_LINE.match(l)]
    return lines, result.returncode, os.listdir(cwd)

  with concurrent.futures.ThreadPoolExecutor(_PARALLEL) as pool:
    return dict(zip(CASES, pool.map(attempt, CASES)))


@pytest.mark.parametrize("name", CASES)
def test_one_line_names_the_file_or_key_and_the_fix(results, name):
  if results[name] is None:
    pytest.skip(f"no CIFAR-10 subset at {TFDS} to damage a copy of")
  lines, status, left_in_cwd = results[name]
  assert len(lines) == 1, "\n".join(lines)
  assert re.match(r"^(error: |colorize: error: |python -m colorize.evaluate: error: )",
                  lines[0]), lines[0]
  for part in CASES[name].says:
    assert part in lines[0], lines[0]
  assert status == CASES[name].status
  assert left_in_cwd == []


def test_only_a_failed_restores_leftover_reports_are_dropped(monkeypatch, tmp_path, caplog):
  """The damaged-checkpoint cases' one line, without the race: what the hooks keep."""
  seen, uncaught = [], []
  monkeypatch.setattr(sys, "unraisablehook", seen.append)
  monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: uncaught.append(value))
  checkpoints = tmp_path / "run" / "checkpoints"
  errors.drop_failed_restore_reports(str(checkpoints))
  errors.drop_failed_restore_reports(str(checkpoints))  # Installed once, however often.
  # asyncio reports the reads that failed on the damaged files when their tasks are dropped.
  for directory in (checkpoints, tmp_path / "elsewhere"):
    logging.getLogger("asyncio").error(
        "Task exception was never retrieved\nfuture: <Task finished exception=ValueError("
        f"'OUT_OF_RANGE: Error reading at local file \"{directory}/2/default/\"')>")
  logging.getLogger("asyncio").error(f"something else about {checkpoints}")
  messages = [r.getMessage() for r in caplog.records]
  assert len(messages) == 2 and "elsewhere" in messages[0]
  assert messages[1].startswith("something else")
  # TensorStore's threads report through either hook.
  for error in (RuntimeError("Event loop is closed"), RuntimeError("other"), ValueError("x")):
    sys.unraisablehook(types.SimpleNamespace(exc_value=error))
    sys.excepthook(type(error), error, None)
  assert [str(u.exc_value) for u in seen] == ["other", "x"]
  assert [str(e) for e in uncaught] == ["other", "x"]
