"""colorize.evaluate: the summary metrics, the baselines and the command on a tiny run."""
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
import skimage.color
import skimage.metrics

from colorize import color
from colorize import eval_files
from colorize import evaluate
from colorize import inference
from colorize import scoring
from colorize import input_pipeline
from colorize import metrics
from colorize import train
from colorize.errors import UserError
from configs import test as test_config


def _images(n=10, size=16, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), np.uint8)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two tiny trained workdirs: "a", and "b", a copy of it labelled as the L1 ablation."""
  root = tmp_path_factory.mktemp("runs")
  config = test_config.get_config()
  config.num_train_steps = 2
  train.train_and_evaluate(config, str(root / "a"))
  shutil.copytree(root / "a", root / "b")
  saved = json.loads((root / "b" / "config.json").read_text())
  (root / "b" / "config.json").write_text(json.dumps({**saved, "loss": "l1"}))
  return root


def test_perfect_outputs():
  refs = _images()
  got = scoring.evaluate_arrays(refs, refs)
  assert got["psnr"] == pytest.approx(scoring.PSNR_CEILING_DB)  # Not inf: see the constant.
  for key in ("ssim", "ab_auc", "lab_acc_2pct", "lab_acc_5pct", "colorfulness_ratio",
              "ab_hist_intersection"):
    assert got[key] == pytest.approx(1.0, abs=1e-5), key
  assert got["delta_e2000"] == pytest.approx(0.0, abs=1e-4)
  assert got["l1"] == 0.0


def test_summary_is_the_mean_of_the_per_image_metrics_whatever_the_batching():
  refs, outs = _images(seed=1), _images(seed=2)
  got = scoring.evaluate_arrays(outs, refs, batch_size=3)  # 3 + 3 + 3 + 1 padded.
  assert got == pytest.approx(scoring.evaluate_arrays(outs, refs, batch_size=64), rel=1e-5)
  lab_o, lab_r = skimage.color.rgb2lab(outs), skimage.color.rgb2lab(refs)
  assert got["delta_e2000"] == pytest.approx(
      skimage.color.deltaE_ciede2000(lab_o, lab_r).mean(), rel=1e-4)
  assert got["ssim"] == pytest.approx(float(np.mean(metrics.ssim(outs, refs, 255.0))), rel=1e-5)
  assert got["l1"] == pytest.approx(np.abs(lab_o - lab_r)[..., 1:].mean() / 110, rel=1e-4)
  assert got["colorfulness_ratio"] == pytest.approx(
      float(np.mean(metrics.colorfulness(outs, 255.0)) /
            np.mean(metrics.colorfulness(refs, 255.0))), rel=1e-5)
  hist = [metrics.ab_histogram(color.rgb_to_lab(x / 255.0)) for x in (outs, refs)]
  assert got["ab_hist_intersection"] == pytest.approx(
      float(metrics.histogram_intersection(*hist)), rel=1e-5)


def _gray_and_color(n_gray=3, n_color=7, size=16):
  """Random colour images, then random grayscale ones (R = G = B)."""
  gray = np.repeat(_images(n_gray, size, seed=5)[..., :1], 3, axis=-1)
  return np.concatenate([_images(n_color, size, seed=6), gray])


def test_psnr_is_pooled_and_the_per_image_mean_skips_grayscale_ground_truths():
  refs = _gray_and_color()
  # The gray baseline reproduces the grayscale pictures exactly.
  outs = evaluate.baseline_outputs(refs, (0.0, 0.0))
  got = scoring.evaluate_arrays(outs, refs, batch_size=4)
  assert got["num_images"] == 10 and got["gray_references"] == 3
  # Pooled: the PSNR of the whole set as one array (skimage, the reference).
  assert got["psnr"] == pytest.approx(
      skimage.metrics.peak_signal_noise_ratio(refs / 255.0, outs / 255.0, data_range=1.0),
      abs=1e-3)
  per_image = [skimage.metrics.peak_signal_noise_ratio(r / 255.0, o / 255.0, data_range=1.0)
               for r, o in zip(refs[:7], outs[:7])]
  assert got["psnr_per_image"] == pytest.approx(np.mean(per_image), abs=1e-3)
  # What the old per-image mean over every image would have said: inflated by the 3.
  inflated = (np.sum(per_image) + 3 * scoring.PSNR_CEILING_DB) / 10
  assert inflated > got["psnr"] + 10


def test_metrics_undefined_on_an_all_grayscale_set_are_none():
  refs = _gray_and_color(n_gray=4, n_color=0)
  got = scoring.evaluate_arrays(_images(4, seed=9), refs)
  assert got["psnr_per_image"] is None and got["colorfulness_ratio"] is None
  assert got["gray_references"] == 4 and np.isfinite(got["psnr"])
  table = eval_files.markdown_table([eval_files.Row("run", "l1", "1", got)], "four gray images")
  assert "n/a" in table and "4 images, 4 of whose" in table


def test_is_gray_finds_pictures_without_chroma():
  refs = _gray_and_color()
  tinted = refs[-1:].copy()
  tinted[0, 0, 0] = [140, 120, 100]  # One coloured pixel is enough to be a colour picture.
  np.testing.assert_array_equal(scoring.is_gray(np.concatenate([refs, tinted])),
                                [False] * 7 + [True] * 3 + [False])


def test_images_smaller_than_the_ssim_window_have_no_ssim():
  refs = _images(size=8)
  assert "ssim" not in scoring.evaluate_arrays(refs, refs)


def test_rejects_float_or_mismatched_arrays():
  with pytest.raises(ValueError, match="uint8"):
    scoring.evaluate_arrays(_images() / 255.0, _images() / 255.0)
  with pytest.raises(ValueError, match="shape"):
    scoring.evaluate_arrays(_images(size=16), _images(size=12))


def test_per_image_values_add_up_to_the_summary():
  refs, outs = _gray_and_color(size=12), _images(10, size=12, seed=3)
  summary, per_image = scoring.evaluate_arrays(outs, refs, batch_size=4, with_per_image=True)
  assert set(per_image) == set(scoring.PER_IMAGE_KEYS) | {"ssim"}
  assert per_image["ab_histogram"].shape == (10, scoring.HISTOGRAM_BINS)
  np.testing.assert_allclose(per_image["ab_histogram"].sum(axis=1), 12 * 12)
  np.testing.assert_allclose(per_image["delta_e2000"], [
      skimage.color.deltaE_ciede2000(skimage.color.rgb2lab(o), skimage.color.rgb2lab(r)).mean()
      for o, r in zip(outs, refs)], rtol=1e-4)
  assert summary["delta_e2000"] == pytest.approx(per_image["delta_e2000"].mean(), rel=1e-6)


def test_set_metrics_count_each_image_as_often_as_its_weight():
  refs, outs = _gray_and_color(size=12), _images(10, size=12, seed=3)
  _, per_image = scoring.evaluate_arrays(outs, refs, batch_size=4, with_per_image=True)
  weights = np.array([2, 0, 1, 3, 1, 0, 1, 0, 2, 1])  # The last three truths are gray.
  got = scoring.set_metrics(per_image, np.stack([weights, np.ones(10)]))
  want = scoring.evaluate_arrays(np.repeat(outs, weights, 0), np.repeat(refs, weights, 0))
  assert list(got) == list(want)
  assert want["gray_references"] == 3 and got["gray_references"][0] == 3
  for key, value in want.items():
    assert got[key][0] == pytest.approx(value, rel=1e-5), key
  # The all-ones row is the set itself.
  for key, value in scoring.evaluate_arrays(outs, refs).items():
    assert got[key][1] == pytest.approx(value, rel=1e-5), key
  undefined = scoring.set_metrics(per_image, np.eye(10)[None, 7])  # Only a gray truth.
  assert np.isnan(undefined["psnr_per_image"][0]) and np.isnan(undefined["colorfulness_ratio"][0])


def test_resample_weights_draw_images_with_replacement_repeatably():
  weights = scoring.resample_weights(50, 400, seed=1)
  assert weights.shape == (400, 50) and (weights.sum(axis=1) == 50).all()
  assert (weights >= 0).all() and (weights == np.round(weights)).all()
  assert (weights == 0).mean() == pytest.approx((1 - 1 / 50)**50, abs=0.02)  # Left out.
  np.testing.assert_array_equal(weights, scoring.resample_weights(50, 400, seed=1))
  assert not np.array_equal(weights, scoring.resample_weights(50, 400, seed=2))


def test_extra_set_metrics_are_fed_every_image():
  class Count:
    def __init__(self):
      self.n = 0

    def update(self, outputs, references):
      self.n += len(outputs)

    def result(self):
      return {"count": float(self.n)}

  refs = _images()
  assert scoring.evaluate_arrays(refs, refs, batch_size=4, extra_metrics=[Count()])[
      "count"] == 10


@pytest.mark.parametrize("ab", [(0.0, 0.0), (20.0, -30.0)])
def test_baseline_outputs_keep_the_lightness_and_set_the_color(ab):
  refs = np.full((2, 4, 4, 3), 128, np.uint8)
  refs[1] = [150, 100, 60]
  lab_in = skimage.color.rgb2lab(refs)
  lab_out = skimage.color.rgb2lab(evaluate.baseline_outputs(refs, ab))
  # Up to 8-bit rounding of the output (these colours are inside the sRGB gamut).
  np.testing.assert_allclose(lab_out[..., 0], lab_in[..., 0], atol=0.5)
  np.testing.assert_allclose(lab_out[..., 1:], np.broadcast_to(ab, lab_out[..., 1:].shape),
                             atol=1.0)


def test_training_mean_ab_over_the_first_images():
  config = test_config.get_config()  # batch 8: 20 images are 2 batches and half a third.
  ab, n = evaluate.training_mean_ab(config, max_images=20)
  assert n == 20
  batches = input_pipeline.train_batches(config, start_step=0, num_steps=3)
  images = np.concatenate([b.reshape((-1,) + b.shape[2:]) for b in batches])[:20]
  want = skimage.color.rgb2lab(images)[..., 1:].mean(axis=(0, 1, 2))
  np.testing.assert_allclose(ab, want, atol=1e-3)


def _table_rows(path):
  return [l for l in path.read_text().splitlines() if l.startswith("| ") and "---" not in l]


def test_command_compares_runs_against_the_baselines(runs, capsys):
  status = evaluate.run([f"--workdir={runs / 'a'}", "--compare", str(runs / "b"),
                         "--num_images=12"])
  assert status == 0
  main = runs / "a" / "eval" / "2"
  record = json.loads((main / "metrics.json").read_text())
  assert record["step"] == 2 and record["num_images"] == 12 and record["loss"] == "wgan_gp"
  assert set(record["baselines"]) == {"gray", "mean colour"}
  assert record["mean_ab_images"] == 4096  # Fewer than MEAN_AB_IMAGES: the whole split.
  assert 0 < record["metrics"]["ab_auc"] <= 1 and "ssim" not in record["metrics"]  # 8x8.
  # The first run's own table has itself and the baselines; compare/ has every run.
  assert len(_table_rows(main / "table.md")) == 4
  rows = _table_rows(main / "compare" / "table.md")
  assert [r.split(" | ")[0][2:] for r in rows[1:]] == [
      str(runs / "a"), str(runs / "b"), "gray (ab = 0)", rows[4].split(" | ")[0][2:]]
  assert rows[4].startswith("| mean colour (ab = ")
  assert " | l1 | 2 | " in rows[2]
  compared = json.loads((main / "compare" / "metrics.json").read_text())["runs"]
  assert [r["loss"] for r in compared] == ["wgan_gp", "l1"] and compared[0] == record
  # gray | a | b | ground truth, 8 images of 8x8 shown 16x; a's own grid: gray | a | truth.
  assert Image.open(main / "compare" / "grid.png").height == 4 * (8 * 16 + 2) + 2
  assert Image.open(main / "grid.png").height == 3 * (8 * 16 + 2) + 2
  assert "| gray (ab = 0) |" in capsys.readouterr().out


def test_command_keeps_the_images_values_beside_the_record(runs, tmp_path, capsys):
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=12"]) == 0
  main = runs / "a" / "eval" / "2"
  record = json.loads((main / "metrics.json").read_text())
  values = eval_files.read_per_image(str(main / eval_files.PER_IMAGE_FILE), 12)
  for key, value in scoring.set_metrics(values, np.ones((1, 12))).items():
    assert record["metrics"][key] == pytest.approx(value[0], rel=1e-5, abs=1e-6), key
  with pytest.raises(UserError, match=r"is float32 \(12,\), not 13 images' finite values"):
    eval_files.read_per_image(str(main / eval_files.PER_IMAGE_FILE), 13)
  damaged = tmp_path / "damaged.npz"
  damaged.write_bytes((main / eval_files.PER_IMAGE_FILE).read_bytes()[:100])
  with pytest.raises(UserError, match=r"damaged.npz: not readable per-image values \(BadZip"):
    eval_files.read_per_image(str(damaged), 12)
  with pytest.raises(UserError, match=r"missing, or not a regular file\): delete it and its"):
    eval_files.read_per_image(str(tmp_path / "absent.npz"), 12)
  planted = dict(values, delta_e2000=np.array(["x"] * 12))
  np.savez(tmp_path / "strings.npz", **planted)
  with pytest.raises(UserError, match=r"\(delta_e2000 holds <U1, not numbers\): delete it"):
    eval_files.read_per_image(str(tmp_path / "strings.npz"), 12)


def test_compare_writes_nothing_in_the_compared_runs(runs, tmp_path):
  """b's own results stay b's: a comparison scores b on a's images, and writes only in a."""
  other = tmp_path / "other"
  shutil.copytree(runs / "b", other)
  own = other / "eval" / "2" / "metrics.json"
  own.parent.mkdir(parents=True, exist_ok=True)
  own.write_text('{"own": "results"}')
  before = sorted(p for p in other.rglob("*"))
  assert evaluate.run([f"--workdir={runs / 'a'}", "--compare", str(other),
                       "--num_images=8"]) == 0
  assert sorted(p for p in other.rglob("*")) == before
  assert own.read_text() == '{"own": "results"}'


def test_command_on_a_folder_reports_unreadable_files(runs, tmp_path, capsys):
  folder = tmp_path / "photos"
  (folder / "sub").mkdir(parents=True)
  for i, size in enumerate([(40, 30), (20, 50), (16, 16)]):
    Image.fromarray(_images(1, seed=i)[0]).resize(size).save(folder / "sub" / f"{i}.png")
  (folder / "broken.jpg").write_bytes(b"not an image")
  status = evaluate.run([f"--workdir={runs / 'a'}", f"--images={folder}", "--size=12"])
  assert status == 1
  assert "broken.jpg: not an image in a format read here" in capsys.readouterr().err
  out = runs / "a" / "eval" / "2" / "images-photos"
  record = json.loads((out / "metrics.json").read_text())
  assert record["num_images"] == 3 and "12x12" in record["source"]
  assert "ssim" in record["metrics"]  # 12x12 holds the 11x11 window.


def test_command_keeps_only_grayscale_ground_truths(runs, tmp_path):
  folder = tmp_path / "mixed"
  folder.mkdir()
  for i, image in enumerate(_gray_and_color(n_gray=3, n_color=4)):
    Image.fromarray(image).save(folder / f"{i}.png")
  assert evaluate.run([f"--workdir={runs / 'a'}", f"--images={folder}", "--gray_only",
                       "--num_samples=3"]) == 0
  out = runs / "a" / "eval" / "2" / "images-mixed" / "gray"
  record = json.loads((out / "metrics.json").read_text())
  assert record["num_images"] == 3 and record["metrics"]["gray_references"] == 3
  assert "3 grayscale images" in record["source"]
  assert record["baselines"]["gray"]["psnr"] == pytest.approx(scoring.PSNR_CEILING_DB)
  # gray | output | ground truth, 3 images of 8x8 shown 16x.
  grid = Image.open(out / "grid.png")
  assert grid.height == 3 * (8 * 16 + 2) + 2 and grid.width > 3 * (8 * 16 + 2)


def test_gray_only_with_no_grayscale_image_is_one_line(runs, capsys):
  assert evaluate.run([f"--workdir={runs / 'a'}", "--gray_only", "--num_images=8"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and "none of" in err[0] and "grayscale" in err[0]


def test_temperature_is_for_classification_heads_only(runs, capsys):
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8", "--temperature=0.2"]) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith(f"error: {runs / 'a'}: a temperature (0.2) applies to a "
                          "classification head") and "\n" not in error


@pytest.mark.parametrize("decoding, folder, label", [
    (evaluate.Decoding(), "", ""),
    (evaluate.Decoding(1.2, 0.2), os.path.join("temperature-0.2", "chroma_gain-1.2"),
     "T0.2 chroma x1.2"),
    (evaluate.Decoding(1.2, None, True), os.path.join("flip_average", "chroma_gain-1.2"),
     "flip avg chroma x1.2"),
    (evaluate.Decoding(0.8, None, False, 0.5), os.path.join("chroma_gain-0.8", "transport-0.5"),
     "chroma x0.8 transport 0.5"),
    (evaluate.Decoding(1.0, None, False, 0.3, True), os.path.join("transport-0.3", "by_class"),
     "transport 0.3 by class"),
])
def test_decoding_names_and_flags(decoding, folder, label):
  """The folder and label name each choice; the flags parse back to the same decoding."""
  assert (decoding.folder(), decoding.label()) == (folder, label)
  args = evaluate._parse_args(["--workdir=w"] + decoding.flags())
  assert evaluate.Decoding(args.chroma_gain, args.temperature, args.flip_average,
                           args.transport, args.transport_by_class) == decoding


def test_command_on_another_split(runs):
  assert evaluate.run([f"--workdir={runs / 'a'}", "--split=train", "--num_images=8"]) == 0
  record = json.loads((runs / "a" / "eval" / "2" / "split-train" / "metrics.json").read_text())
  assert "'train' split" in record["source"]


def test_chroma_gain_is_scored_in_its_own_folder(runs):
  """Gain 0 leaves only the input's lightness: it scores exactly as the gray baseline."""
  step = runs / "a" / "eval" / "2"
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8"]) == 0
  own = (step / "metrics.json").read_text()
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8", "--chroma_gain=0"]) == 0
  record = json.loads((step / "chroma_gain-0" / "metrics.json").read_text())
  assert record["chroma_gain"] == 0
  assert f"| {runs / 'a'} (chroma x0) |" in (step / "chroma_gain-0" / "table.md").read_text()
  for key in ("psnr", "delta_e2000", "ab_hist_intersection"):
    assert record["metrics"][key] == pytest.approx(record["baselines"]["gray"][key], abs=1e-3)
  assert json.loads(own)["metrics"]["psnr"] != pytest.approx(record["metrics"]["psnr"])
  assert (step / "metrics.json").read_text() == own


def test_flip_average_is_scored_in_its_own_folder(runs):
  step = runs / "a" / "eval" / "2"
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8", "--flip_average"]) == 0
  record = json.loads((step / "flip_average" / "metrics.json").read_text())
  assert record["flip_average"] is True
  assert f"| {runs / 'a'} (flip avg) |" in (step / "flip_average" / "table.md").read_text()


def test_transport_is_scored_in_its_own_folder_and_its_map_kept(runs, monkeypatch):
  """Moved all the way, the colours are spread as the training split's: far more colourful
  than a model trained for two steps; the map is fit once, then read."""
  step = runs / "a" / "eval" / "2"
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8"]) == 0
  own = json.loads((step / "metrics.json").read_text())["metrics"]
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8", "--transport=1"]) == 0
  record = json.loads((step / "transport-1" / "metrics.json").read_text())
  assert record["transport"] == 1 and (step / "transport.npz").is_file()
  assert record["metrics"]["colorfulness_ratio"] > 2 * own["colorfulness_ratio"]
  assert record["metrics"]["ab_hist_intersection"] > own["ab_hist_intersection"]
  monkeypatch.setattr(inference, "fit_transport", lambda *_: pytest.fail("fit again"))
  assert evaluate.run([f"--workdir={runs / 'a'}", "--num_images=8", "--transport=0.5"]) == 0
  half = json.loads((step / "transport-0.5" / "metrics.json").read_text())["metrics"]
  assert own["colorfulness_ratio"] < half["colorfulness_ratio"] < record["metrics"][
      "colorfulness_ratio"]


@pytest.mark.parametrize("args, message", [
    (["--step=7"], "no checkpoint at step 7"),
    (["--split=nope"], "nope"),
])
def test_command_errors_are_one_line(runs, capsys, args, message):
  assert evaluate.run([f"--workdir={runs / 'a'}"] + args) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err[-1].startswith("error: ") and message in err[-1]


def test_command_without_a_workdir(tmp_path, capsys):
  assert evaluate.run([f"--workdir={tmp_path}"]) == 2
  assert "no config.json" in capsys.readouterr().err


def test_compare_alone_evaluates_every_run_like_a_sweep_glob(runs):
  """`--compare runs/sweep/*` (no --workdir): the first run leads, as if given --workdir."""
  assert evaluate.run(["--compare", str(runs / "a"), str(runs / "b"), "--num_images=12"]) == 0
  rows = _table_rows(runs / "a" / "eval" / "2" / "compare" / "table.md")
  assert [r.split(" | ")[0][2:] for r in rows[1:3]] == [str(runs / "a"), str(runs / "b")]


def test_no_workdir_and_no_compare_is_a_usage_error():
  with pytest.raises(SystemExit):
    evaluate.run([])
