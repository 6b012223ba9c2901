"""colorize.plots: grid layout and pixels, PNG output, curve figures."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from colorize import image_files
from colorize import plots

_GAP = 2


def _batches(n, h, w, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(0, 256, size=(n, h, w, 3), dtype=np.uint8) for _ in range(3)]


def _cells(grid, n, h, w, scale):
  """Yields ((row, column), block) for each image, located from the right edge."""
  cell_h, cell_w = h * scale + _GAP, w * scale + _GAP
  for i in range(3):
    for j in range(n):
      y = _GAP + i * cell_h
      x = grid.shape[1] - (n - j) * cell_w
      yield (i, j), grid[y:y + h * scale, x:x + w * scale]


@pytest.mark.parametrize("n, h, w, scale", [(4, 8, 8, 4), (3, 5, 7, 2), (1, 6, 4, 1)])
def test_labelled_grid_layout_and_pixels_uint8(n, h, w, scale):
  rows = _batches(n, h, w)
  grid = plots.labelled_grid(list(zip(("grayscale", "generated", "real"), rows)), scale=scale)
  assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
  assert grid.shape[0] == 3 * (h * scale + _GAP) + _GAP
  label_w = grid.shape[1] - n * (w * scale + _GAP) - _GAP
  assert label_w > 20  # Room for "grayscale" in the default font.
  assert grid[:, :label_w].min() < 128  # Dark label text on white.
  for (i, j), block in _cells(grid, n, h, w, scale):
    expected = rows[i][j].repeat(scale, axis=0).repeat(scale, axis=1)
    np.testing.assert_array_equal(block, expected)
  # The gap between the first two rows is white.
  np.testing.assert_array_equal(grid[_GAP + h * scale:2 * _GAP + h * scale, label_w:], 255)


def test_labelled_grid_float_and_single_channel_gray():
  rows = _batches(2, 4, 4, seed=1)
  floats = [r / 255.0 for r in rows]
  floats[0] = floats[0][..., :1]  # Grayscale as one channel.
  grid = plots.labelled_grid(list(zip("abc", floats)), scale=3)
  expected_gray = np.repeat(rows[0][..., :1], 3, axis=-1)
  for (i, j), block in _cells(grid, 2, 4, 4, 3):
    source = expected_gray if i == 0 else rows[i]
    np.testing.assert_array_equal(block, source[j].repeat(3, axis=0).repeat(3, axis=1))


def test_labelled_grid_shape_mismatch_raises():
  a, b, c = _batches(2, 4, 4)
  with pytest.raises(ValueError, match="shape"):
    plots.labelled_grid([("a", a), ("b", b), ("c", c[:1])])


def test_save_image_creates_dirs(tmp_path):
  image = _batches(1, 5, 6)[0][0]
  path = tmp_path / "a" / "b" / "grid.png"
  image_files.save_image(image, str(path))
  np.testing.assert_array_equal(np.asarray(Image.open(path)), image)


def _write_log(path, with_critic=True):
  lines = []
  for step in range(0, 100, 10):
    record = {"step": step, "l1": 1.0 / (step + 1)}
    if with_critic:
      record.update(critic_loss=-step * 0.1, wasserstein=step * 0.1, gradient_penalty=0.5)
    lines.append(json.dumps(record))
    if step % 50 == 0:
      lines.append(json.dumps({"step": step, "eval_l1": 0.3, "eval_psnr": 20.0}))
  path.write_text("\n".join(lines) + "\n")


def test_plot_curves_writes_pngs(tmp_path):
  log = tmp_path / "metrics.jsonl"
  _write_log(log)
  out_dir = tmp_path / "plots"
  paths = plots.plot_curves(str(log), str(out_dir))
  # No colour metrics in this log: that figure is skipped.
  assert [os.path.basename(p) for p in paths] == ["critic_loss.png", "l1_loss.png",
                                                  "eval_psnr.png"]
  for p in paths:
    with Image.open(p) as image:
      assert image.format == "PNG"
      assert image.size[0] >= 300 and image.size[1] >= 200


def test_plot_curves_skips_absent_critic(tmp_path):
  log = tmp_path / "metrics.jsonl"
  _write_log(log, with_critic=False)
  paths = plots.plot_curves(str(log), str(tmp_path))
  assert [os.path.basename(p) for p in paths] == ["l1_loss.png", "eval_psnr.png"]
  assert not (tmp_path / "critic_loss.png").exists()


def test_plot_curves_tolerates_truncated_last_line(tmp_path):
  log = tmp_path / "metrics.jsonl"
  log.write_text('{"step": 1, "l1": 0.5}\n{"step": 2, "l1": 0.4}\n{"step": 3, "l1"')
  assert len(plots.plot_curves(str(log), str(tmp_path))) == 1
  log.write_text('{"step": 1, "l1": 0.5}\n{"step": 2, "l1\n{"step": 3, "l1": 0.3}\n')
  with pytest.raises(ValueError, match=":2"):
    plots.plot_curves(str(log), str(tmp_path))


def test_import_does_not_load_matplotlib():
  code = "import sys, colorize.plots; assert 'matplotlib' not in sys.modules"
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
