"""Bad configs fail before anything compiles, each with one line naming the key and what is
accepted: one test per class of mistake, most calling `validate_config` directly."""
import pathlib
import subprocess
import sys

import ml_collections
import pytest

from colorize import train
from colorize import validation
from colorize.errors import UserError
from configs import cifar10
from configs import quickstart
from configs import test as test_config
from tests import helpers

REPO = pathlib.Path(__file__).resolve().parents[1]


def _as_written(**changes) -> ml_collections.ConfigDict:
  """The test config with values of any type, as a config file could set them."""
  values = test_config.get_config().to_dict()
  for dotted, value in changes.items():
    *parents, key = dotted.split(".")
    node = values
    for parent in parents:
      node = node[parent]
    node[key] = value
  return ml_collections.ConfigDict(values)


def _error(config, num_devices=1) -> str:
  with pytest.raises(UserError) as info:
    validation.validate_config(config, num_devices)
  message = str(info.value)
  assert "\n" not in message
  return message


@pytest.mark.parametrize("variant", ["", "seed", "wgan_gp_paper", "fast", "subset", "subset100",
                                     "seed,subset"])
def test_shipped_configs_pass(variant):
  config = cifar10.get_config(variant)
  validation.validate_config(config, num_devices=1)
  validation.validate_config(quickstart.get_config(), num_devices=1)
  validation.validate_config(test_config.get_config(), num_devices=1)


def test_variants_compose_in_order():
  config = cifar10.get_config("seed,subset100")
  assert config.num_epochs == 100 and config.sample_epochs == (1, 10, 25, 50, 100)
  assert config.optimizer.decay_start == 1.0 and config.ema_decay == 0.0
  assert cifar10.get_config("subset100").ema_decay == 0.999  # The chosen recipe's default.
  with pytest.raises(ValueError, match="unknown variant 'subsett'.*seed, "):
    cifar10.get_config("seed,subsett")


def test_subset_runs_its_epochs_after_a_variant_that_fixes_the_steps():
  fast = cifar10.get_config("fast,subset")
  assert fast.batch_size == 256 and fast.num_train_steps == -1 and fast.num_epochs == 10
  # Evaluated and checkpointed once an epoch: 4,576 // 256 steps, not batch 16's 286.
  assert fast.eval_every_steps == fast.checkpoint_every_steps == 17
  assert cifar10.get_config("seed,subset").eval_every_steps == 286
  assert cifar10.get_config("wgan_gp_paper,subset").eval_every_steps == 4576 // (16 * 5)
  assert cifar10.get_config("subset,fast").num_train_steps == 20_000  # Applied in order.


def test_fast_keeps_the_emas_horizon_in_images():
  # 1,000 updates of 16 images at the default's 0.999; at batch 256 the same 16,000 images.
  assert cifar10.get_config("fast").ema_decay == pytest.approx(1 - 256 / 16_000)
  assert cifar10.get_config("seed,fast").ema_decay == 0.0  # No EMA stays no EMA.


def test_unknown_key():
  message = _error(_as_written(lamda_gp=1.0))
  assert "config.lamda_gp is not a config key" in message and "lambda_gp" in message


def test_missing_key():
  config = test_config.get_config()
  del config["on_nonfinite"]
  assert "config.on_nonfinite is missing: configs/cifar10.py's default is 'stop'" in (
      _error(config))


@pytest.mark.parametrize("key,value,expected", [
    ("batch_size", "16", "expected int"),
    ("batch_size", 16.0, "expected int"),
    ("batch_size", None, "expected int"),  # ml_collections takes None for anything.
    ("optimizer.critic_lr", "1e-4", "expected float"),
    ("model.norm", 1, "expected str"),
    ("allow_config_change", 1, "expected bool"),
])
def test_wrong_type(key, value, expected):
  message = _error(_as_written(**{key: value}))
  assert message.startswith(f"config.{key}={value!r} is invalid") and expected in message


def test_batch_size_not_divisible_by_devices():
  message = _error(helpers.config(batch_size=8), num_devices=3)
  assert "config.batch_size=8" in message and "device count (3)" in message


@pytest.mark.parametrize("dataset", ["", "folder:"])
def test_dataset_of_the_wrong_form(dataset):
  assert "'folder:/path/to/images' or 'shapes'" in _error(helpers.config(dataset=dataset))


def test_unknown_tfds_dataset_fails_before_the_workdir_is_touched(tmp_path):
  with pytest.raises(UserError, match=r"unknown dataset config\.dataset='no_such_dataset'.*"
                                      r"must be a tfds name"):
    train.train_and_evaluate(helpers.config(dataset="no_such_dataset"), str(tmp_path / "run"))
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("size", [24, 2, 0])
def test_image_size_the_unet_cannot_halve_to_1x1(size):
  assert "a power of two >= 4" in _error(helpers.config(image_size=size))


def test_critic_too_deep_for_the_image_size():
  config = helpers.config(image_size=8)
  config.model.critic_layers = 3
  assert "config.model.critic_layers=3 is invalid: expected 1..2" in _error(config)


@pytest.mark.parametrize("key,value", [
    ("critic_lr", 0.0), ("generator_lr", -1e-4), ("critic_lr", float("nan")),
    ("generator_lr", float("inf"))])
def test_non_positive_learning_rate(key, value):
  config = helpers.config()
  config.optimizer[key] = value
  assert f"config.optimizer.{key}" in _error(config) and "a positive number" in _error(config)


@pytest.mark.parametrize("overrides,key", [
    (dict(lambda_gp=0.0), "lambda_gp"),  # WGAN-GP without its penalty.
    (dict(lambda_gp=-1.0, loss="vanilla"), "lambda_gp"),
    (dict(l1_weight=-1.0), "l1_weight"),
    (dict(l1_weight=0.0, loss="l1"), "l1_weight"),  # Nothing left to train.
    (dict(ema_decay=1.0), "ema_decay"),
    (dict(n_critic=0), "n_critic"),
    (dict(l1_rebalance=1.0), "l1_rebalance"),  # Unbounded weights.
    (dict(l1_rebalance=0.5, color_space="rgb"), "l1_rebalance"),  # Bins are in ab.
    (dict(ce_weight=-1.0), "ce_weight"),
    (dict(class_weight=-1.0, model=dict(num_classes=3)), "class_weight"),
    (dict(class_weight=1.0), "class_weight"),  # Nothing to classify with.
    (dict(swd_weight=-1.0), "swd_weight"),
    (dict(swd_weight=1.0, color_space="rgb"), "swd_weight"),  # It compares ab.
    (dict(feature_matching_weight=-1.0), "feature_matching_weight"),
    (dict(feature_matching_weight=1.0, loss="l1"), "feature_matching_weight"),  # No critic.
    (dict(swd_scope="pixel"), "swd_scope"),
    (dict(swd_space="rgb"), "swd_space"),
    (dict(critic_augment="translation,color"), "critic_augment"),  # Not one of the policies.
    (dict(critic_augment="cutout", loss="l1"), "critic_augment"),  # No critic.
    (dict(model=dict(num_classes=-1)), "model.num_classes"),
    (dict(model=dict(critic_projection=True)), "model.critic_projection"),  # No classes.
    (dict(model=dict(mirror_average=True, num_classes=3)), "model.mirror_average"),
    (dict(model=dict(mirror_average=True, head="classification")), "model.mirror_average"),
    (dict(ce_weight=0.0, l1_weight=0.0, loss="l1", model=dict(head="classification")),
     "l1_weight"),  # Nothing left to train.
    (dict(model=dict(head="mixture")), "model.head"),
    (dict(color_space="rgb", model=dict(head="classification")), "model.head"),
    (dict(model=dict(temperature=0.0)), "model.temperature"),
    (dict(model=dict(temperature=float("nan"))), "model.temperature"),
])
def test_non_positive_weights(overrides, key):
  assert _error(helpers.config(**overrides)).startswith(f"config.{key}=")


def test_zero_weights_that_are_ablations_pass():
  validation.validate_config(helpers.config(l1_weight=0.0), 1)  # A pure GAN.
  validation.validate_config(helpers.config(lambda_gp=0.0, loss="lsgan"), 1)  # Penalty unused.
  # Zhang et al.'s loss alone: the cross-entropy trains the classification head.
  validation.validate_config(helpers.config(l1_weight=0.0, loss="l1",
                                            model=dict(head="classification")), 1)
  # The L1 alone through a classification head's decoded colours.
  validation.validate_config(helpers.config(ce_weight=0.0, loss="l1",
                                            model=dict(head="classification")), 1)


@pytest.mark.parametrize("overrides,expected", [
    (dict(on_nonfinite="ignore"), "one of ('stop', 'skip')"),
    (dict(loss="wgan"), "one of ('wgan_gp', 'vanilla', 'lsgan', 'l1')"),
    (dict(seed=-1), "a non-negative integer"),
    (dict(sample_epochs=(0,)), "epochs >= 1"),
    (dict(compute_dtype="float16"), "one of ('float32', 'bfloat16')"),
])
def test_other_values_outside_their_range(overrides, expected):
  assert expected in _error(helpers.config(**overrides))


@pytest.mark.parametrize("override,expected", [
    ("--config.batch_size=abc", "error: flag --config.batch_size=abc: invalid literal for int()"),
    ("--config.model.widht=8",
     "error: config.model.widht is not a config key (did you mean model.width?)"),
])
def test_cli_flag_errors_are_one_line(tmp_path, override, expected):
  result = subprocess.run(
      [sys.executable, "-m", "colorize.main", "--config=configs/test.py",
       f"--workdir={tmp_path / 'run'}", override],
      cwd=REPO, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert result.stderr.strip().splitlines()[-1].startswith(expected)
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "run").exists()
