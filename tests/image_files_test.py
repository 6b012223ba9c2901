"""Image files from someone else, through each reader: `colorize`, the folder dataset and
`evaluate --images` (all three use `colorize.image_files`).

Only JPEG, PNG, TIFF, BMP and WebP are decoded, whatever a file's name says (EPS would go to
Ghostscript); FIFOs are skipped, not opened (opening one blocks forever); float and 32-bit
TIFFs keep their documented range or are refused with the reason.
"""
import os

import numpy as np
from PIL import EpsImagePlugin
from PIL import Image
import pytest

from colorize import cli
from colorize import evaluate
from colorize import input_pipeline
from colorize.errors import UserError
from tests import helpers

_EPS = (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\n%%EndComments\n"
        b"0 0 moveto 8 8 lineto stroke showpage\n")
_GOOD = np.random.default_rng(0).integers(0, 256, (8, 8, 3), np.uint8)


def _dataset(folder):
  """The folder dataset's eval images (< 10 files: every file), 8x8."""
  config = helpers.config(dataset=f"folder:{folder}", image_size=8)
  return input_pipeline.eval_images(config, 16)


@pytest.fixture
def ghostscript_calls(monkeypatch):
  """Pillow's EPS decoder runs Ghostscript through this function: record any call."""
  calls = []

  def record(*args, **kwargs):
    calls.append(args)
    raise RuntimeError("Ghostscript was asked to run")

  monkeypatch.setattr(EpsImagePlugin, "Ghostscript", record)
  return calls


@pytest.fixture
def disguised(tmp_path):
  """A folder with one PNG, an EPS named .jpg and a GIF named .png."""
  folder = tmp_path / "photos"
  folder.mkdir()
  Image.fromarray(_GOOD).save(folder / "good.png")
  (folder / "eps.jpg").write_bytes(_EPS)
  Image.fromarray(_GOOD).save(folder / "gif.png", format="GIF")
  return folder


def test_colorize_decodes_only_the_documented_formats(disguised, ghostscript_calls):
  assert cli.load_image(str(disguised / "good.png")).shape == (8, 8, 3)
  for name in ("eps.jpg", "gif.png"):
    with pytest.raises(UserError, match=f"{name}: not an image in a format read here"):
      cli.load_image(str(disguised / name))
  assert ghostscript_calls == []


def test_folder_dataset_decodes_only_the_documented_formats(disguised, ghostscript_calls):
  images = _dataset(disguised)  # eps.jpg and gif.png are replaced by good.png.
  assert all(np.array_equal(image, _GOOD) for image in images)
  assert ghostscript_calls == []


def test_evaluate_images_decodes_only_the_documented_formats(disguised, ghostscript_calls):
  images, failed = evaluate.load_folder(str(disguised), 8)
  assert len(images) == 1 and np.array_equal(images[0], _GOOD)
  assert sorted(line.split(": ")[1] for line in failed) == [
      "not an image in a format read here (JPEG, PNG, TIFF, BMP, WebP)"] * 2
  assert ghostscript_calls == []


@pytest.fixture
def with_fifo(tmp_path):
  """A folder with a FIFO named a.png (sorted first) and a PNG."""
  folder = tmp_path / "photos"
  folder.mkdir()
  os.mkfifo(folder / "a.png")
  Image.fromarray(_GOOD).save(folder / "b.png")
  return folder


def test_fifos_are_skipped_by_every_reader(with_fifo, tmp_path, capsys):
  with helpers.deadline():
    jobs, failed = cli.collect_jobs([str(with_fifo)], str(tmp_path / "out"), None)
    assert [job.source for job in jobs] == [str(with_fifo / "b.png")] and failed == []
    assert all(np.array_equal(image, _GOOD) for image in _dataset(with_fifo))
    images, failed = evaluate.load_folder(str(with_fifo), 8)
    assert len(images) == 1 and failed == []
    # Named on its own, a FIFO is reported, not opened.
    jobs, failed = cli.collect_jobs([str(with_fifo / "a.png")], str(tmp_path / "out"), None)
    assert jobs == [] and failed == [
        f"{with_fifo / 'a.png'}: not a regular file (a FIFO, socket, device or broken link)"]
  capsys.readouterr()


@pytest.fixture
def tiffs(tmp_path):
  """Float and 32-bit integer TIFFs: two in their documented range, two outside it."""
  folder = tmp_path / "tiffs"
  folder.mkdir()
  ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
  Image.fromarray(ramp).save(folder / "b_float.tif")  # Mode "F", in [0, 1].
  levels = np.round(np.linspace(0, 1, 64).reshape(8, 8) * (2**31 - 1)).astype(np.int32)
  Image.fromarray(levels).save(folder / "c_int32.tif")
  Image.fromarray(ramp * 255).save(folder / "a_float255.tif")  # Float, but 0..255.
  Image.fromarray(np.full((8, 8), -5, np.int32)).save(folder / "d_negative.tif")
  return folder, np.round(ramp * 255).astype(np.uint8)


def test_colorize_reads_float_and_int32_tiffs_in_their_range(tiffs):
  folder, _ = tiffs
  ramp = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8, 1)
  for name in ("b_float.tif", "c_int32.tif"):
    image = cli.load_image(str(folder / name))
    assert image.dtype == np.float32
    np.testing.assert_allclose(image, ramp, atol=1e-6)
  with pytest.raises(UserError, match=r"a_float255.tif: cannot decode \(ValueError: float "
                                      r"pixels in \[0, 255\]: float images must lie in \[0, 1\]"):
    cli.load_image(str(folder / "a_float255.tif"))
  with pytest.raises(UserError, match="signed 32-bit pixels down to -5"):
    cli.load_image(str(folder / "d_negative.tif"))


def test_folder_dataset_and_evaluate_read_float_and_int32_tiffs_in_their_range(tiffs):
  folder, gray = tiffs
  want = np.repeat(gray[..., None], 3, axis=-1)
  images = _dataset(folder)  # a_float255 and d_negative are replaced by the next good file.
  assert [np.array_equal(image, want) for image in images] == [True] * 4
  images, failed = evaluate.load_folder(str(folder), 8)
  assert len(images) == 2 and all(np.abs(image.astype(int) - want).max() <= 1 for image in images)
  assert [line.split(": ")[0] for line in failed] == [
      str(folder / "a_float255.tif"), str(folder / "d_negative.tif")]
