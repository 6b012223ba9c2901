"""Config checks that run before anything is built or compiled.

The config is its own schema: configs/cifar10.py's config, locked, holds every key with a value
of its type, and ml_collections refuses a key it lacks or a value of another type (`checked`).
The checks here are the rest, the ones that carry meaning: ranges, choices, consistency.
Each failure is a `UserError` whose one line names the key, the value and what is accepted.
Whether the dataset exists (a tfds name, a folder of images) is checked when the trainer opens
it, which it does right after these checks: still before it touches the workdir or compiles.
"""
import difflib
import math
import re
from typing import Any, Sequence

import ml_collections

from colorize import color
from colorize import conv
from colorize import diff_augment
from colorize import losses
from colorize import models
from colorize import nonfinite
from colorize.errors import UserError
# The package reads the keys from the shipped config rather than from a copy kept in sync.
from configs import cifar10

# What a trained workdir's config.json is read for (`restore.read_config`): the keys under
# these names build the model and read its data. Nothing else in it is used: not the training
# schedule, and never a setting of the machine (compilation_cache_dir, data_threads), which is
# the user's to choose, not a downloaded workdir's.
MODEL_AND_DATA = ("model", "optimizer", "seed", "dataset", "data_dir", "train_split",
                  "eval_split", "image_size", "batch_size", "random_jitter", "color_space",
                  "loss", "n_critic", "ema_decay")
# Keys that workdirs written before them lack, with the value that rebuilds those runs: a
# config.json without one reads as that value, and resuming such a workdir is no change.
ADDED_KEYS = {"model.head": "regression", "model.temperature": 0.38, "model.num_classes": 0,
              "model.critic_projection": False, "model.mirror_average": False}


def reference() -> ml_collections.ConfigDict:
  """configs/cifar10.py's default config, locked: every key, with a value of its type."""
  return cifar10.get_config().lock()


def _require(ok: bool, key: str, value, accepted: str) -> None:
  if not ok:
    raise UserError(f"config.{key}={value!r} is invalid: expected {accepted}")


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """{"model": {"width": 4}} -> {"model.width": 4}: the dotted keys of a nested dict."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def _unknown(key: str, keys) -> UserError:
  close = difflib.get_close_matches(key, keys, n=1)
  return UserError(f"config.{key} is not a config key"
                   f"{f' (did you mean {close[0]}?)' if close else ''}; the keys are those "
                   "of configs/cifar10.py")


def check_override_keys(args: Sequence[str]) -> None:
  """Raises UserError on the first `--config.<key>=...` of `args` whose key is not a config key.

  A locked config refuses it too, but as a KeyError whose wording is ml_collections' own: this
  check comes first so that the line is ours.

  Args:
    args: command-line arguments.
  """
  keys = flatten(reference().to_dict())
  for arg in args:
    override = re.match(r"--?(?:no)?config\.([^=]+)", arg)
    if override and override.group(1) not in keys:
      raise _unknown(override.group(1), keys)


def checked(values: dict[str, Any], names: Sequence[str] | None = None
            ) -> ml_collections.ConfigDict:
  """`values` set on the locked `reference`, which refuses unknown keys and wrong types.

  Args:
    values: a config as a nested dict (`ConfigDict.to_dict()`, a config.json).
    names: take only the keys under these top-level names (each must be there; the others of
      `values` are ignored); None: every key of the reference, and no other.

  Returns:
    The reference config with those values.

  Raises:
    UserError: naming the first key that is unknown, missing or holds a value of another type.
  """
  config = reference()
  defaults, flat = flatten(config.to_dict()), flatten(values)
  if names is None:
    for key in flat:
      if key not in defaults:
        raise _unknown(key, defaults)
  for key, default in defaults.items():
    if names is not None and key.split(".")[0] not in names:
      continue
    if key not in flat and key in ADDED_KEYS:
      flat[key] = ADDED_KEYS[key]
    if key not in flat:
      raise UserError(f"config.{key} is missing: configs/cifar10.py's default is {default!r}")
    try:
      if flat[key] is None:  # ml_collections lets None replace any value.
        raise TypeError
      config.update_from_flattened_dict({key: flat[key]})
    except TypeError:
      raise UserError(f"config.{key}={flat[key]!r} is invalid: expected "
                      f"{type(default).__name__}") from None
  return config


def check_model_and_data(c: ml_collections.ConfigDict) -> None:
  """Raises UserError on the first inconsistent value of the `MODEL_AND_DATA` keys of `c`.

  Args:
    c: a config holding (at least) those keys, of their types (`checked`).
  """
  _require(c.loss in losses.LOSSES, "loss", c.loss, f"one of {losses.LOSSES}")
  _require(c.color_space in color.TARGET_CHANNELS, "color_space", c.color_space,
           f"one of {tuple(color.TARGET_CHANNELS)}")
  _require(c.model.norm in models.NORMS, "model.norm", c.model.norm, f"one of {models.NORMS}")
  _require(c.model.conv_impl in conv.IMPLS, "model.conv_impl", c.model.conv_impl,
           f"one of {conv.IMPLS}")
  _require(c.dataset == "shapes" or bool(c.dataset.removeprefix("folder:")), "dataset",
           c.dataset, "a tfds name (e.g. 'cifar10'), 'folder:/path/to/images' or 'shapes'")
  size = c.image_size
  _require(size >= 4 and size & (size - 1) == 0, "image_size", size,
           "a power of two >= 4 (the U-Net halves it down to 1x1)")
  _require(c.model.critic_layers >= 1 and size >> c.model.critic_layers >= 2,
           "model.critic_layers", c.model.critic_layers,
           f"1..{max(1, size.bit_length() - 2)} for image_size={size} (patches of >= 2x2)")
  for key in ("width", "max_width", "critic_width"):
    _require(c.model[key] >= 1, f"model.{key}", c.model[key], "a positive integer")
  for key in ("batch_size", "n_critic"):
    _require(c[key] >= 1, key, c[key], "a positive integer")
  # numpy's SeedSequence (the data order) takes non-negative seeds only, and a JAX key holds
  # 32 bits of a seed: 2**32 would be seed 0 again.
  _require(0 <= c.seed < 2**32, "seed", c.seed, "a non-negative integer below 2**32")
  for key in ("generator_lr", "critic_lr"):
    lr = c.optimizer[key]
    _require(math.isfinite(lr) and lr > 0, f"optimizer.{key}", lr, "a positive number")
  for key in ("b1", "b2"):
    _require(0 <= c.optimizer[key] < 1, f"optimizer.{key}", c.optimizer[key], "in [0, 1)")
  _require(0 <= c.model.dropout < 1, "model.dropout", c.model.dropout, "in [0, 1)")
  _require(c.model.dropout_layers in models.DROPOUT_LAYERS, "model.dropout_layers",
           c.model.dropout_layers, f"one of {models.DROPOUT_LAYERS}")
  _require(math.isfinite(c.model.init_std) and c.model.init_std >= 0, "model.init_std",
           c.model.init_std, ">= 0 (0: flax's default initialisation)")
  _require(0 < c.optimizer.decay_start <= 1, "optimizer.decay_start", c.optimizer.decay_start,
           "in (0, 1] (1: constant learning rates)")
  _require(0 <= c.ema_decay < 1, "ema_decay", c.ema_decay, "in [0, 1) (0 disables the EMA)")
  _require(c.model.head in models.HEADS and (c.model.head == "regression"
                                             or c.color_space == "lab"),
           "model.head", c.model.head,
           f"one of {models.HEADS}, and 'regression' unless color_space='lab'")
  _require(math.isfinite(c.model.temperature) and c.model.temperature > 0,
           "model.temperature", c.model.temperature,
           "a positive number (the annealed mean's; 1: the plain mean)")
  _require(c.model.num_classes >= 0, "model.num_classes", c.model.num_classes,
           ">= 0 (0: no classifier; else the dataset's number of classes)")
  _require(not c.model.mirror_average or (c.model.head == "regression"
                                          and c.model.num_classes == 0),
           "model.mirror_average", c.model.mirror_average,
           "False with model.head='classification' or model.num_classes > 0")
  _require(not c.model.critic_projection or c.model.num_classes > 0,
           "model.critic_projection", c.model.critic_projection,
           "False unless model.num_classes > 0 (the number of classes it is told)")


def validate_config(config: ml_collections.ConfigDict, num_devices: int,
                    num_processes: int = 1) -> None:
  """Raises UserError on the first unknown key, wrong type or inconsistent value of `config`.

  Args:
    config: the run config.
    num_devices: devices over which the global batch is split.
    num_processes: processes that each read a part of the global batch.
  """
  if not isinstance(config, ml_collections.ConfigDict):  # E.g. get_config() returned None.
    raise UserError(f"the config is a {type(config).__name__}, not an "
                    "ml_collections.ConfigDict: get_config() in the --config file must return "
                    "one (see configs/cifar10.py)")
  c = checked(config.to_dict())
  check_model_and_data(c)
  _require(c.compute_dtype in models.COMPUTE_DTYPES, "compute_dtype", c.compute_dtype,
           f"one of {models.COMPUTE_DTYPES}")
  _require(c.on_nonfinite in nonfinite.MODES, "on_nonfinite", c.on_nonfinite,
           f"one of {nonfinite.MODES} (stop the run, or skip the step and count it)")
  for key in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps",
              "keep_checkpoints", "eval_examples", "num_samples", "data_threads"):
    _require(c[key] >= 1, key, c[key], "a positive integer")
  _require(c.steps_per_call >= 0, "steps_per_call", c.steps_per_call,
           "a positive integer, or 0 for the backend's default")
  _require(all(e >= 1 for e in c.sample_epochs), "sample_epochs", c.sample_epochs,
           "epochs >= 1")
  # A zero weight is an ablation only where something else still trains the model: L1 alone
  # needs its weight, and WGAN-GP's critic is unbounded without its penalty.
  _require(math.isfinite(c.lambda_gp) and (c.lambda_gp > 0 if c.loss == "wgan_gp"
                                           else c.lambda_gp >= 0),
           "lambda_gp", c.lambda_gp,
           "a positive number for loss='wgan_gp' (else >= 0; the penalty is unused)")
  for key in ("l1_weight", "ce_weight", "class_weight", "swd_weight", "feature_matching_weight"):
    _require(math.isfinite(c[key]) and c[key] >= 0, key, c[key], ">= 0 (0: no such term)")
  _require(c.class_weight == 0 or c.model.num_classes > 0, "class_weight", c.class_weight,
           "0 unless model.num_classes > 0 (the classifier it trains)")
  # Without a critic (loss="l1") something else must train the generator.
  classify = c.model.head == "classification"
  _require(c.loss != "l1" or c.l1_weight > 0 or (classify and c.ce_weight > 0), "l1_weight",
           c.l1_weight, "a positive number for loss='l1' (no critic), unless the ce_weight of "
           "a classification head trains the generator")
  _require(c.swd_weight == 0 or c.color_space == "lab", "swd_weight", c.swd_weight,
           "0 unless color_space='lab' (it compares ab colours)")
  _require(c.feature_matching_weight == 0 or c.loss != "l1", "feature_matching_weight",
           c.feature_matching_weight, "0 for loss='l1' (it matches the critic's features)")
  _require(c.swd_scope in ("image", "batch"), "swd_scope", c.swd_scope, "'image' or 'batch'")
  _require(c.swd_space in ("ab", "lab"), "swd_space", c.swd_space, "'ab' or 'lab'")
  accepted = f"'' or a comma-separated subset of {','.join(diff_augment.POLICIES)}"
  try:
    policy = diff_augment.parse(c.critic_augment)
  except ValueError:
    policy = None
  _require(policy is not None, "critic_augment", c.critic_augment, accepted)
  _require(not policy or c.loss != "l1", "critic_augment", c.critic_augment,
           "'' for loss='l1' (it augments what the critic sees)")
  _require(0 <= c.l1_rebalance < 1 and (c.l1_rebalance == 0 or c.color_space == "lab"),
           "l1_rebalance", c.l1_rebalance,
           "in [0, 1) (0: plain L1; 0.5: Zhang et al.), and 0 unless color_space='lab'")
  _require(c.num_train_steps > 0 or c.num_epochs > 0, "num_train_steps", c.num_train_steps,
           "> 0, or num_epochs > 0 (num_train_steps wins when > 0)")
  _require(c.batch_size % num_devices == 0 and c.batch_size % num_processes == 0,
           "batch_size", c.batch_size,
           f"a multiple of the device count ({num_devices}) and process count ({num_processes})")
