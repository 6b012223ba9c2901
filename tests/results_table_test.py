"""scripts/results_table.py: groups by seed, mean ± std, paired differences."""
import json
import os
import socket
import sys

from etils import epath
import numpy as np
from PIL import Image
import pytest

from colorize import eval_files
from colorize import scoring
from colorize import workdir as workdir_lib
from tests import helpers

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import results_table  # pylint: disable=g-import-not-at-top,wrong-import-position

_KEYS = ("psnr", "psnr_per_image", "delta_e2000", "ssim", "ab_auc", "lab_acc_2pct",
         "colorfulness_ratio", "ab_hist_intersection")


def _run(root, name, psnr, delta_e, step=10, sub="", head="regression", num_classes=0):
  """A workdir that evaluate has already scored (its eval/<step>/<sub>/metrics.json)."""
  workdir = root / name
  (workdir / "checkpoints" / str(step)).mkdir(parents=True, exist_ok=True)
  # A whole config, as training writes it: colorize reads only validated configs.
  (workdir / "config.json").write_text(helpers.config(seed=0, eval_split="val",
                                                      model=dict(head=head,
                                                                 num_classes=num_classes)
                                                      ).to_json())
  metrics = {k: 0.5 for k in _KEYS} | {"psnr": psnr, "delta_e2000": delta_e}
  (workdir / "eval" / str(step) / sub).mkdir(parents=True)
  (workdir / "eval" / str(step) / sub / "metrics.json").write_text(json.dumps({
      "metrics": metrics, "source": "the validation images",
      "baselines": {"gray": metrics | {"psnr": 20.0}}}))
  return str(workdir)


def _scored_run(root, name, outputs, references):
  """A run scored on `references` as evaluate scores it: its record and its images' values."""
  workdir = _run(root, name, 0.0, 0.0)
  summary, values = scoring.evaluate_arrays(outputs, references, with_per_image=True)
  folder = os.path.join(workdir, "eval", "10")
  path = os.path.join(folder, "metrics.json")
  with open(path) as f:
    record = json.load(f)
  with open(path, "w") as f:
    json.dump(record | {"metrics": summary}, f)
  np.savez(os.path.join(folder, eval_files.PER_IMAGE_FILE), **values)
  return workdir


def _images(n, seed):
  return np.random.default_rng(seed).integers(0, 256, (n, 12, 12, 3), np.uint8)  # SSIM: >= 11.


def _rows(capsys):
  """The printed table's rows by their first cell, each split into cells."""
  return _rows_of(capsys.readouterr().out)


def _rows_of(out):
  return {line.split(" | ")[0][2:]: line.split(" | ")
          for line in out.splitlines() if line.startswith("| ")}


def test_groups_by_seed_with_mean_std_and_paired_differences(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0), _run(tmp_path, "seed=1", 23.0, 12.0),
          _run(tmp_path, "ema=0.9,seed=0", 21.5, 9.0), _run(tmp_path, "ema=0.9,seed=1", 24.5, 11.0)]
  assert results_table.main(runs + ["--reference=base"]) == 0
  rows = _rows(capsys)
  assert rows["base"][1] == "0,1" and rows["base"][2] == "22.00 ± 1.41"  # std with ddof=1.
  assert rows["ema=0.9"][2] == "23.00 ± 2.12"
  # Paired by seed: +0.5 and +1.5 dB; -1 and -1 in ΔE00.
  assert rows["ema=0.9"][-2:] == ["+1.00 ± 0.71", "-1.00 ± 0.00 |"]
  assert rows["gray (baseline)"][2] == "20.00"


def test_chroma_gains_are_groups_of_their_own(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0), _run(tmp_path, "seed=1", 23.0, 12.0)]
  _run(tmp_path, "seed=0", 20.0, 11.0, sub="chroma_gain-1.2")
  _run(tmp_path, "seed=1", 22.5, 12.5, sub="chroma_gain-1.2")
  assert results_table.main(runs + ["--chroma_gains=1,1.2", "--reference=base"]) == 0
  rows = _rows(capsys)
  assert rows["base chroma x1.2"][2] == "21.25 ± 1.77"
  assert rows["base chroma x1.2"][-2:] == ["-0.75 ± 0.35", "+0.75 ± 0.35 |"]
  assert results_table.main(runs + ["--chroma_gains=1,-2"]) == 2
  assert "--chroma_gains=1,-2: give numbers >= 0" in capsys.readouterr().err


def test_transports_are_groups_of_their_own_after_each_gain(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0)]
  _run(tmp_path, "seed=0", 20.0, 11.0, sub="transport-0.5")
  _run(tmp_path, "seed=0", 20.5, 10.5, sub="chroma_gain-0.8")
  _run(tmp_path, "seed=0", 20.8, 10.2, sub="chroma_gain-0.8/transport-0.5")
  assert results_table.main(runs + ["--chroma_gains=1,0.8", "--transports=0,0.5"]) == 0
  rows = _rows(capsys)
  assert rows["base transport 0.5"][2] == "20.00"
  assert rows["base chroma x0.8 transport 0.5"][2] == "20.80"
  assert results_table.main(runs + ["--transports=0,2"]) == 2
  assert "--transports=0,2: give numbers from 0 to 1" in capsys.readouterr().err


def test_transport_by_class_is_a_group_of_its_own_for_runs_that_classify(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0, num_classes=3),
          _run(tmp_path, "plain,seed=0", 22.0, 9.0)]  # No classifier: scored as it is.
  for name, psnr, sub in (("seed=0", 20.0, "transport-0.5"),
                          ("seed=0", 20.3, "transport-0.5/by_class"),
                          ("plain,seed=0", 21.0, "transport-0.5")):
    _run(tmp_path, name, psnr, 10.0, sub=sub, num_classes=3 * (name == "seed=0"))
  assert results_table.main(runs + ["--transports=0,0.5", "--transport_by_class=both"]) == 0
  rows = _rows(capsys)
  assert (rows["base"][2], rows["base transport 0.5"][2],
          rows["base transport 0.5 by class"][2]) == ("21.00", "20.00", "20.30")
  assert rows["plain transport 0.5"][2] == "21.00" and "plain transport 0.5 by class" not in rows
  assert results_table.main(runs + ["--transports=0,0.5", "--transport_by_class=yes"]) == 0
  rows = _rows(capsys)
  assert "base transport 0.5 by class" in rows and "base transport 0.5" not in rows


def test_flip_average_is_a_group_of_its_own(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0)]
  _run(tmp_path, "seed=0", 20.5, 10.5, sub="chroma_gain-1.2")
  _run(tmp_path, "seed=0", 21.3, 9.8, sub="flip_average")
  _run(tmp_path, "seed=0", 21.1, 9.9, sub="flip_average/chroma_gain-1.2")
  assert results_table.main(runs + ["--flip_average=both", "--chroma_gains=1,1.2"]) == 0
  rows = _rows(capsys)
  assert {"base", "base flip avg", "base flip avg chroma x1.2"} <= set(rows)
  assert rows["base flip avg"][2] == "21.30" and rows["base flip avg chroma x1.2"][2] == "21.10"
  assert results_table.main(runs + ["--flip_average=yes"]) == 0
  rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| base")]
  assert len(rows) == 1 and rows[0].startswith("| base flip avg |")


def test_temperatures_are_groups_of_their_own_for_classification_runs(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0),
          _run(tmp_path, "zhang,seed=0", 22.0, 9.0, head="classification")]
  _run(tmp_path, "zhang,seed=0", 21.5, 9.5, sub="temperature-0.2", head="classification")
  _run(tmp_path, "zhang,seed=0", 21.2, 9.7, sub="temperature-0.2/chroma_gain-1.2",
       head="classification")
  _run(tmp_path, "seed=0", 20.5, 10.5, sub="chroma_gain-1.2")
  assert results_table.main(runs + ["--temperatures=0.2", "--chroma_gains=1,1.2"]) == 0
  rows = _rows(capsys)
  # The regression run as it is; the classification run only at the temperatures asked for.
  assert {"base", "base chroma x1.2", "zhang T0.2", "zhang T0.2 chroma x1.2"} <= set(rows)
  assert "zhang" not in rows
  assert rows["zhang T0.2"][2] == "21.50" and rows["zhang T0.2 chroma x1.2"][2] == "21.20"
  assert results_table.main(runs + ["--temperatures=0"]) == 2
  assert "--temperatures=0: give numbers > 0" in capsys.readouterr().err


def test_unknown_reference_is_one_line(tmp_path, capsys):
  assert results_table.main([_run(tmp_path, "seed=0", 21.0, 10.0), "--reference=x"]) == 2
  assert capsys.readouterr().err.strip() == "error: --reference=x: no such group (base)"


def test_a_run_still_training_is_refused_until_it_ends(tmp_path, capsys):
  run = _run(tmp_path, "seed=0", 21.0, 10.0)
  with workdir_lib.lock(epath.Path(run)):
    assert results_table.main([run]) == 2
  assert capsys.readouterr().err == (
      f"error: {run}: still training (host {socket.gethostname()}, process {os.getpid()}), "
      "so checkpoint 10 may not be its last; score it when the run has ended\n")
  with workdir_lib.lock(epath.Path(run)):
    with open(os.path.join(run, "run.lock"), "w") as f:
      f.write("host x\nerror: planted\n")  # Whatever is in it, the error stays one line.
    assert results_table.main([run]) == 2
  assert "still training (host x error: planted), so" in capsys.readouterr().err
  assert results_table.main([run]) == 0  # The lock file stays; its holder is gone.
  os.remove(os.path.join(run, "run.lock"))
  os.mkfifo(os.path.join(run, "run.lock"))  # Planted: opening it for reading would block.
  with helpers.deadline(30):
    assert results_table.main([run]) == 0


@pytest.mark.parametrize("damage, message", [
    (lambda r: "{not json", "unreadable (Expecting property name"),
    (lambda r: json.dumps([r]), "not an evaluation record (metrics, baselines, source)"),
    (lambda r: json.dumps(r | {"metrics": r["metrics"] | {"psnr": "21.0"}}),
     "metrics.psnr is '21.0', not a number"),
    (lambda r: json.dumps(r | {"metrics": {"psnr": 21.0}}),
     "metrics.psnr_per_image is None, not a number"),
    (lambda r: json.dumps(r | {"baselines": {"gray": {**r["metrics"], "ssim": None}}}),
     "baselines.gray.ssim is None, not a number"),
])
def test_a_damaged_metrics_file_is_one_line_naming_it(tmp_path, capsys, damage, message):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0), _run(tmp_path, "seed=1", 23.0, 12.0)]
  path = tmp_path / "seed=1" / "eval" / "10" / "metrics.json"
  path.write_text(damage(json.loads(path.read_text())))
  assert results_table.main(runs + [f"--plot={tmp_path / 'x.png'}"]) == 2
  out = capsys.readouterr()
  assert out.err.startswith(f"error: {path}: {message}") and out.err.count("\n") == 1
  assert out.err.endswith(": delete it and run this command again to score the run afresh\n")
  assert out.out == "" and not (tmp_path / "x.png").exists()  # No table from a bad record.


@pytest.mark.parametrize("name, want", [("a=1,seed=3", ("a=1", 3)), ("seed=2,b=x", ("b=x", 2)),
                                        ("seed=4", ("base", 4))])
def test_group_and_seed(name, want):
  assert results_table.group_and_seed(f"/runs/{name}") == want


def test_plot_draws_the_groups_and_refuses_an_unwritable_path(tmp_path, capsys):
  runs = [_run(tmp_path, "seed=0", 21.0, 10.0), _run(tmp_path, "seed=1", 23.0, 12.0),
          _run(tmp_path, "ema=0.9,seed=0", 21.5, 9.0)]
  plot = tmp_path / "plots" / "tradeoff.png"
  assert results_table.main(runs + [f"--plot={plot}", "--reference=base"]) == 0
  with Image.open(plot) as image:
    assert image.format == "PNG" and image.size == (1200, 550)
  (tmp_path / "file").write_text("")
  assert results_table.main(runs + [f"--plot={tmp_path / 'file' / 'x.png'}"]) == 2
  error = capsys.readouterr().err.strip()
  assert error.startswith(f"error: --plot={tmp_path / 'file' / 'x.png'}: ") and "\n" not in error


def test_bootstrap_adds_intervals_over_the_images_paired_image_by_image(tmp_path, capsys):
  truth, noisy = _images(40, seed=0), _images(40, seed=1)
  runs = [_scored_run(tmp_path, "seed=0", noisy, truth),
          _scored_run(tmp_path, "seed=1", _images(40, seed=2), truth),
          _scored_run(tmp_path, "same,seed=0", noisy, truth),  # Seed 0's outputs again.
          _scored_run(tmp_path, "perfect,seed=0", truth, truth)]
  assert results_table.main(runs + ["--reference=base", "--bootstrap=200"]) == 0
  out = capsys.readouterr().out
  assert "over 200 bootstrap resamples of the images" in out
  rows = _rows_of(out)
  assert rows["run"][-4:] == ["ratio 95% (images)", "∩ 95% (images)", "ΔPSNR 95% (images)",
                              "ΔΔE00 95% (images) |"]
  # Paired: the same outputs on every resample differ by exactly 0.
  assert rows["same"][-2:] == ["[+0.00, +0.00]", "[+0.00, +0.00] |"]
  assert rows["perfect"][-4:-2] == ["[1.000, 1.000]", "[1.000, 1.000]"]
  assert rows["base"][-2:] == ["-", "- |"] and rows["gray (baseline)"][-1] == "- |"
  low, high = (float(x) for x in rows["base"][-4].strip("[]").split(", "))
  ratio = float(rows["base"][2 + list(results_table.COLUMNS).index("colorfulness_ratio")]
                .split(" ± ")[0])
  assert low < ratio < high and high - low > 0.01
  # Perfect outputs are ahead of the noise on every resample.
  assert float(rows["perfect"][-2].strip("[]").split(", ")[0]) > 0  # ΔPSNR's low end.
  assert float(rows["perfect"][-1].strip("[] |").split(", ")[1]) < 0  # ΔΔE00's high end.


def test_bootstrap_refuses_runs_scored_on_other_images(tmp_path, capsys):
  runs = [_scored_run(tmp_path, "seed=0", _images(20, seed=1), _images(20, seed=0)),
          _scored_run(tmp_path, "other,seed=0", _images(20, seed=1), _images(20, seed=3))]
  assert results_table.main(runs + ["--bootstrap=10"]) == 2
  assert capsys.readouterr().err == (
      "error: --bootstrap pairs the runs image by image, but they were scored on different "
      "images: give runs of one dataset, scored on one split\n")
  assert results_table.main(runs[:1] + ["--bootstrap=-1"]) == 2
  assert "--bootstrap=-1: give a number of resamples >= 0" in capsys.readouterr().err


def test_bootstrap_reads_the_images_values_as_data(tmp_path, capsys):
  run = _scored_run(tmp_path, "seed=0", _images(20, seed=1), _images(20, seed=0))
  values = os.path.join(run, "eval", "10", eval_files.PER_IMAGE_FILE)
  with open(values, "r+b") as f:
    f.truncate(200)
  assert results_table.main([run, "--bootstrap=10"]) == 2
  error = capsys.readouterr().err
  assert error.startswith(f"error: {values}: not readable per-image values (BadZipFile")
  assert error.endswith("delete it and its metrics.json and score the run again\n")
  os.remove(values)
  os.mkfifo(values)  # Planted: reading it would block forever.
  with helpers.deadline(30):
    assert results_table.main([run, "--bootstrap=10"]) == 2
  assert "not a regular file" in capsys.readouterr().err
