"""Tests of the colorize command line: inputs, outputs, bad files, safety, exit codes."""
import configparser
import importlib
import io
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
from colorize import image_files
from colorize import train
from colorize.errors import UserError
from configs import test as test_config

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A tiny trained run with checkpoints at steps 1 and 2 (shared by the module)."""
  path = tmp_path_factory.mktemp("run")
  config = test_config.get_config()
  config.update(num_train_steps=2, checkpoint_every_steps=1)
  train.train_and_evaluate(config, str(path))
  return path


def _pixels(shape, seed=0):
  return np.random.default_rng(seed).integers(0, 256, shape, np.uint8)


def _image(path, shape, seed=0, **save_kwargs):
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(_pixels(shape, seed)).save(path, **save_kwargs)
  return path


def _run(capsys, workdir, *args):
  """Runs the CLI in-process; returns (exit status, stderr lines)."""
  status = cli.run([f"--workdir={workdir}", *map(str, args)])
  return status, capsys.readouterr().err.strip().splitlines()


def _save(tmp_path, name, image, **kwargs):
  path = tmp_path / name
  image.save(path, **kwargs)
  return str(path)


def test_load_image_modes_and_formats(tmp_path):
  rng = np.random.default_rng(5)
  rgb = Image.fromarray(_pixels((6, 10, 3)))
  rgba = Image.fromarray(_pixels((6, 10, 4)))  # Not opaque: WebP would drop the alpha.
  gray16 = rng.integers(0, 65536, (6, 10), np.uint16)
  palette = rgb.convert("P")
  palette.info["transparency"] = 0
  cases = {
      "rgb.jpg": (rgb, {}, (6, 10, 3), np.uint8),
      "gray.png": (rgb.convert("L"), {}, (6, 10, 1), np.uint8),
      "bilevel.png": (rgb.convert("1"), {}, (6, 10, 1), np.uint8),
      "gray16.png": (Image.fromarray(gray16), {}, (6, 10, 1), np.uint16),
      "gray16.tif": (Image.fromarray(gray16), {}, (6, 10, 1), np.uint16),
      "la.png": (rgb.convert("LA"), {}, (6, 10, 2), np.uint8),
      "rgba.webp": (rgba, {"lossless": True}, (6, 10, 4), np.uint8),
      "palette.png": (palette, {"transparency": 0}, (6, 10, 4), np.uint8),
      "palette.bmp": (rgb.convert("P"), {}, (6, 10, 3), np.uint8),
      "cmyk.jpg": (rgb.convert("CMYK"), {}, (6, 10, 3), np.uint8),
  }
  for name, (image, kwargs, shape, dtype) in cases.items():
    loaded = cli.load_image(_save(tmp_path, name, image, **kwargs))
    assert (loaded.shape, loaded.dtype) == (shape, dtype), name
  assert np.array_equal(cli.load_image(str(tmp_path / "gray16.png"))[..., 0], gray16)


def test_load_image_applies_exif_orientation(tmp_path):
  image = Image.fromarray(_pixels((4, 12, 3)))
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display.
  path = _save(tmp_path, "rotated.jpg", image, exif=exif)
  assert cli.load_image(path).shape == (12, 4, 3)


def test_load_image_errors_name_the_file(tmp_path, monkeypatch):
  (tmp_path / "empty.png").write_bytes(b"")
  (tmp_path / "text.png").write_text("not an image")
  buffer = io.BytesIO()
  Image.fromarray(_pixels((64, 64, 3))).save(buffer, format="PNG")
  (tmp_path / "truncated.png").write_bytes(buffer.getvalue()[:200])
  (tmp_path / "big.png").write_bytes(buffer.getvalue())
  for name, reason, max_pixels in [
      ("empty.png", "empty file", 10**6), ("text.png", "not an image", 10**6),
      ("truncated.png", "cannot decode", 10**6), ("big.png", r"too large \(64x64", 4095)]:
    with pytest.raises(UserError, match=f"^{tmp_path / name}: {reason}"):
      cli.load_image(str(tmp_path / name), max_pixels)
  # Pillow's own decompression-bomb check (above 2x its MAX_IMAGE_PIXELS) is reported too.
  monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
  with pytest.raises(UserError, match="too large for Pillow"):
    cli.load_image(str(tmp_path / "big.png"))


def test_folder_recursively_one_output_per_input_same_name_and_size(workdir, tmp_path, capsys):
  photos = tmp_path / "photos"
  inputs = {"a.jpg": (30, 20, 3), "sub/b.png": (5, 300), "sub/deep/c.tif": (17, 9),
            "d.bmp": (12, 12, 3), "e.webp": (16, 8, 4), "f.JPEG": (1, 40, 3)}
  for i, (name, shape) in enumerate(inputs.items()):
    _image(photos / name, shape, seed=i)
  (photos / "notes.txt").write_text("not an image: folders only give image files")
  status, lines = _run(capsys, workdir, f"--input={photos}", f"--output={tmp_path / 'out'}")
  assert status == 0
  assert lines == ["6 colorized, 0 skipped (output exists), 0 failed"]
  written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                   if p.is_file())
  assert written == sorted(inputs)
  for name, shape in inputs.items():
    with Image.open(tmp_path / "out" / name) as out:
      assert (out.height, out.width) == shape[:2]
      assert out.mode == ("RGBA" if shape[-1:] == (4,) else "RGB")


def test_files_globs_format_override_and_exif(workdir, tmp_path, capsys):
  _image(tmp_path / "in" / "scan1.png", (9, 14))
  _image(tmp_path / "in" / "scan2.png", (10, 10, 3))
  exif = Image.Exif()
  exif[0x0112] = 6  # Displayed rotated 90 degrees: the output is stored upright.
  _image(tmp_path / "in" / "turned.jpg", (4, 12, 3), exif=exif)
  out = tmp_path / "out"
  status, _ = _run(capsys, workdir, f"--input={tmp_path / 'in' / 'scan*.png'}",
                   f"--input={tmp_path / 'in' / 'turned.jpg'}", f"--output={out}",
                   "--format=jpeg")
  assert status == 0
  assert sorted(os.listdir(out)) == ["scan1.jpg", "scan2.jpg", "turned.jpg"]
  with Image.open(out / "turned.jpg") as rotated:
    assert rotated.format == "JPEG" and rotated.size == (4, 12)


def test_a_glob_that_also_matches_folders_does_each_file_once(workdir, tmp_path, capsys):
  photos = tmp_path / "photos"
  inputs = ["a.png", "sub/b.png", "sub/deep/c.jpg"]
  for name in inputs:
    _image(photos / name, (6, 5, 3))
  # `photos/**` matches photos/, photos/sub/, photos/sub/deep/ and each file.
  status, lines = _run(capsys, workdir, f"--input={photos}/**", f"--output={tmp_path / 'out'}")
  assert status == 0 and lines == ["3 colorized, 0 skipped (output exists), 0 failed"]
  written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*")
                   if p.is_file())
  assert written == inputs


def test_bad_files_are_one_line_each_the_rest_done(workdir, tmp_path, capsys):
  photos = tmp_path / "photos"
  good = _image(photos / "good.png", (8, 8, 3))
  _image(photos / "big.png", (40, 40))
  (photos / "empty.jpg").write_bytes(b"")
  (photos / "text.png").write_text("hello")
  (photos / "truncated.png").write_bytes(good.read_bytes()[:100])
  status, lines = _run(capsys, workdir, f"--input={photos}", f"--input={tmp_path / 'nope*'}",
                       f"--output={tmp_path / 'out'}", "--max_pixels=1000")
  assert status == 1
  truncated = f"{photos / 'truncated.png'}: cannot decode ("
  assert sorted(line for line in lines[:-1] if not line.startswith(truncated)) == sorted([
      f"{photos / 'big.png'}: too large (40x40 = 1,600 pixels > the limit of 1,000; see "
      "--max_pixels)",
      f"{photos / 'empty.jpg'}: empty file",
      f"{photos / 'text.png'}: not an image in a format read here (JPEG, PNG, TIFF, BMP, WebP)",
      f"{tmp_path / 'nope*'}: no such file, folder or glob match",
  ])
  assert sum(line.startswith(truncated) for line in lines) == 1
  assert lines[-1] == "1 colorized, 0 skipped (output exists), 5 failed"
  assert os.listdir(tmp_path / "out") == [good.name]


def test_existing_outputs_skipped_unless_overwrite(workdir, tmp_path, capsys):
  source = _image(tmp_path / "a.png", (6, 7))
  out = tmp_path / "out"
  out.mkdir()
  (out / "a.png").write_bytes(b"keep me")
  status, lines = _run(capsys, workdir, f"--input={source}", f"--output={out}")
  assert status == 0 and (out / "a.png").read_bytes() == b"keep me"
  assert lines == [f"{source}: {out / 'a.png'} exists, skipped (--overwrite to replace it)",
                   "0 colorized, 1 skipped (output exists), 0 failed"]
  status, lines = _run(capsys, workdir, f"--input={source}", f"--output={out}", "--overwrite")
  assert status == 0 and lines == ["1 colorized, 0 skipped (output exists), 0 failed"]
  assert Image.open(out / "a.png").size == (7, 6)
  assert sorted(os.listdir(out)) == ["a.png"]  # No temporary file left behind.


def test_never_overwrites_an_input(workdir, tmp_path, capsys):
  photo = _image(tmp_path / "photos" / "a.png", (6, 6))
  before = photo.read_bytes()
  status, lines = _run(capsys, workdir, f"--input={tmp_path / 'photos'}",
                       f"--output={tmp_path / 'photos'}", "--overwrite")
  assert status == 1 and photo.read_bytes() == before
  assert lines[0] == f"{photo}: refusing to overwrite an input ({photo})"
  # An output folder inside the input folder is not read back as input on the next run.
  for summary in ("1 colorized, 0 skipped (output exists), 0 failed",
                  "0 colorized, 1 skipped (output exists), 0 failed"):
    status, lines = _run(capsys, workdir, f"--input={tmp_path / 'photos'}",
                         f"--output={tmp_path / 'photos' / 'colored'}")
    assert status == 0 and lines[-1] == summary
  assert os.listdir(tmp_path / "photos" / "colored") == ["a.png"]


def test_refuses_to_write_outside_output_through_symlinks(workdir, tmp_path, capsys):
  _image(tmp_path / "photos" / "sub" / "a.png", (6, 6))
  outside = tmp_path / "outside"
  outside.mkdir()
  out = tmp_path / "out"
  out.mkdir()
  (out / "sub").symlink_to(outside)
  status, lines = _run(capsys, workdir, f"--input={tmp_path / 'photos'}", f"--output={out}")
  assert status == 1 and os.listdir(outside) == []
  assert lines[0] == (f"{tmp_path / 'photos' / 'sub' / 'a.png'}: refusing to write outside "
                      f"--output ({outside / 'a.png'})")


def test_step_native_and_batches(workdir, tmp_path, capsys):
  photos = [_image(tmp_path / "in" / f"{i}.png", (5 + i, 9), seed=i) for i in range(5)]
  outputs = {}
  for name, flags in [("latest", []), ("step1", ["--step=1"]), ("native", ["--native"]),
                      ("batch2", ["--batch_size=2"]), ("flip", ["--flip_average"])]:
    status, _ = _run(capsys, workdir, f"--input={tmp_path / 'in'}",
                     f"--output={tmp_path / name}", *flags)
    assert status == 0
    outputs[name] = [np.asarray(Image.open(tmp_path / name / p.name)) for p in photos]
  # Another model, another input size, two views: other colours.
  for key in ("step1", "native", "flip"):
    assert any(not np.array_equal(a, b) for a, b in zip(outputs["latest"], outputs[key]))
  assert all(np.array_equal(a, b) for a, b in zip(outputs["latest"], outputs["batch2"]))


@pytest.mark.parametrize("edit,message", [
    (lambda wd: shutil.rmtree(wd / "checkpoints"), "no checkpoint in"),
    (lambda wd: _set_width(wd, 8), "checkpoint 2 does not match config.json"),
])
def test_unusable_workdir_is_one_line_exit_2(workdir, tmp_path, capsys, edit, message):
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy)
  edit(copy)
  photo = _image(tmp_path / "a.png", (6, 6))
  status, lines = _run(capsys, copy, f"--input={photo}", f"--output={tmp_path / 'out'}")
  assert status == 2 and len(lines) == 1
  assert lines[0].startswith(f"error: {copy}: ") and message in lines[0]
  assert not (tmp_path / "out").exists()


def _set_width(workdir, width):
  config = json.loads((workdir / "config.json").read_text())
  config["model"]["width"] = width
  (workdir / "config.json").write_text(json.dumps(config))


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
  def broken_save(self, fp, *args, **kwargs):
    fp.write(b"half an image")
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(Image.Image, "save", broken_save)
  with pytest.raises(OSError):
    image_files.save_image(np.zeros((4, 4, 3), np.uint8), str(tmp_path / "a.png"))
  assert os.listdir(tmp_path) == []


def test_command_line_in_a_subprocess(workdir, tmp_path):
  photo = _image(tmp_path / "in" / "a.png", (6, 6))
  (tmp_path / "in" / "b.png").write_text("not a png")
  result = subprocess.run(
      [sys.executable, "-m", "colorize.colorize", f"--workdir={workdir}",
       f"--input={tmp_path / 'in'}", f"--output={tmp_path / 'out'}"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode == 1 and "Traceback" not in result.stderr
  assert result.stderr.strip().splitlines()[-2:] == [
      f"{tmp_path / 'in' / 'b.png'}: not an image in a format read here (JPEG, PNG, TIFF, BMP, "
      "WebP)",
      "1 colorized, 0 skipped (output exists), 1 failed"]
  assert (tmp_path / "out" / photo.name).exists()


def test_console_script_entry_point():
  setup = configparser.ConfigParser()
  setup.read(REPO / "setup.cfg")
  script = setup["options.entry_points"]["console_scripts"].strip()
  name, target = (s.strip() for s in script.split("="))
  module, function = target.split(":")
  assert name == "colorize"
  assert getattr(importlib.import_module(module), function) is cli.run
