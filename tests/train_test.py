"""End-to-end tests of train_and_evaluate and the CLI on the tiny test config."""
import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
from PIL import Image
import pytest

from colorize import train
from colorize.errors import UserError
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]


def _params_equal(a, b):
  return all(jax.tree.leaves(jax.tree.map(lambda x, y: np.array_equal(x, y), a, b)))


def test_writes_every_artifact(tmp_path):
  state = train.train_and_evaluate(helpers.config(), str(tmp_path))
  assert int(state.step) == 4
  assert json.loads((tmp_path / "config.json").read_text())["loss"] == "wgan_gp"
  rows = helpers.jsonl(tmp_path)
  train_rows = [r for r in rows if "critic_loss" in r]
  assert [r["step"] for r in train_rows] == [2, 4]
  for key in ("critic_loss", "gradient_penalty", "wasserstein", "l1", "generator_loss"):
    assert np.isfinite(train_rows[-1][key])
  assert [r["step"] for r in rows if "eval_psnr" in r] == [2, 4]
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["2", "4"]
  assert list(tmp_path.glob("events.out.tfevents.*"))
  grid = Image.open(tmp_path / "samples" / "step_0000004.png")
  assert grid.mode == "RGB" and grid.width > grid.height
  assert {p.name for p in (tmp_path / "plots").iterdir()} == {
      "critic_loss.png", "l1_loss.png", "eval_psnr.png", "eval_color.png"}


def test_resumed_run_equals_uninterrupted_run(tmp_path):
  resumed, straight = tmp_path / "resumed", tmp_path / "straight"
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(resumed))
  final_resumed = train.train_and_evaluate(helpers.config(num_train_steps=4), str(resumed))
  final_straight = train.train_and_evaluate(helpers.config(num_train_steps=4), str(straight))
  assert int(final_resumed.step) == 4
  # The second run continued at step 3 (it logged 2 from the first run, then only 4).
  assert [r["step"] for r in helpers.jsonl(resumed) if "l1" in r] == [2, 4]
  assert _params_equal(final_resumed.gen_params, final_straight.gen_params)
  assert _params_equal(final_resumed.critic_params, final_straight.critic_params)
  assert _params_equal(final_resumed.gen_opt_state, final_straight.gen_opt_state)


def test_resume_drops_log_lines_past_the_checkpoint(tmp_path):
  train.train_and_evaluate(helpers.config(num_train_steps=2), str(tmp_path))
  with (tmp_path / "metrics.jsonl").open("a") as f:  # As if killed after step 3, mid-line.
    f.write(json.dumps({"step": 3, "l1": 0.5}) + "\n" + '{"step": 4, "l1"')
  train.train_and_evaluate(helpers.config(num_train_steps=4), str(tmp_path))
  assert [r["step"] for r in helpers.jsonl(tmp_path) if "l1" in r] == [2, 4]


def test_folder_dataset_with_sample_epochs(tmp_path):
  images = tmp_path / "images"
  images.mkdir()
  rng = np.random.default_rng(0)
  for i in range(16):  # 14 train (every 10th file is held out) -> 1 step per epoch at batch 8.
    Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8)).save(images / f"{i}.png")
  config = helpers.config(dataset=f"folder:{images}", num_train_steps=3, sample_epochs=(1, 3))
  train.train_and_evaluate(config, str(tmp_path / "run"))
  samples = {p.name for p in (tmp_path / "run" / "samples").iterdir()}
  assert samples == {"epoch_001.png", "epoch_003.png"}


def test_l1_ablation_has_no_critic_metrics(tmp_path):
  train.train_and_evaluate(helpers.config(loss="l1", n_critic=5), str(tmp_path))
  row = [r for r in helpers.jsonl(tmp_path) if "l1" in r][-1]
  assert "critic_loss" not in row and row["adversarial"] == 0.0
  assert (tmp_path / "plots" / "l1_loss.png").exists()
  assert not (tmp_path / "plots" / "critic_loss.png").exists()


def test_rebalanced_l1_logs_the_weighted_and_the_plain_l1(tmp_path):
  train.train_and_evaluate(helpers.config(l1_rebalance=0.5), str(tmp_path))
  row = [r for r in helpers.jsonl(tmp_path) if "l1" in r][-1]
  # The shapes' colours are rarer than their gray background: the weighted term is larger.
  assert row["l1_rebalanced"] > row["l1"] > 0


def test_non_finite_loss_stops_with_step_and_metric(tmp_path):
  config = helpers.config(num_train_steps=40, log_every_steps=1, checkpoint_every_steps=1)
  config.optimizer.generator_lr = config.optimizer.critic_lr = 1e6  # Diverges at step 2.
  with pytest.raises(FloatingPointError,
                     match=r"non-finite \w+=(nan|inf|-inf) at step 2 .* checkpoint is step 1"):
    train.train_and_evaluate(config, str(tmp_path))
  assert os.listdir(tmp_path / "checkpoints") == ["1"]
  assert all(np.isfinite(v) for row in helpers.jsonl(tmp_path) for v in row.values())


def test_bad_config_fails_before_compiling(tmp_path):
  with pytest.raises(UserError, match=r"config\.loss='wgan' is invalid"):
    train.train_and_evaluate(helpers.config(loss="wgan"), str(tmp_path))
  assert not (tmp_path / "checkpoints").exists()


@pytest.mark.parametrize("override,message", [
    ("--config.image_size=24", "config.image_size=24 is invalid"),
    ("--config.dataset=folder:/nonexistent", "/nonexistent"),
])
def test_cli_reports_user_errors_in_one_line(tmp_path, override, message):
  result = subprocess.run(
      [sys.executable, "-m", "colorize.main", "--config=configs/test.py",
       f"--workdir={tmp_path}", override],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith("error: ") and message in last_line
  assert "Traceback" not in result.stderr


def test_cli_unknown_key_is_refused(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "colorize.main", "--config=configs/test.py",
       f"--workdir={tmp_path}", "--config.lamda_gp=1"],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0 and "lamda_gp" in result.stderr


@helpers.needs_cifar_subset
def test_trains_on_real_cifar10_through_tfds(tmp_path):
  config = helpers.config(dataset="cifar10", data_dir=str(helpers.CIFAR_SUBSET), image_size=32,
                          num_train_steps=2, train_split="train[:90%]", eval_split="train[90%:]")
  train.train_and_evaluate(config, str(tmp_path))
  eval_row = [r for r in helpers.jsonl(tmp_path) if "eval_psnr" in r][-1]
  assert 5.0 < eval_row["eval_psnr"] < 60.0
