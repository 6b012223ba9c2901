"""Config checks that run before anything is built or compiled.

Each failure is a `UserError` whose one line names the key, the value and what is accepted.
Whether the dataset exists (a tfds name, a folder of images) is checked when the trainer opens
it, which it does right after these checks: still before it touches the workdir or compiles.
"""
import difflib
import math
from typing import Any

import ml_collections

from colorize import conv
from colorize import losses
from colorize import models
from colorize.errors import UserError

COLOR_SPACES = ("lab", "rgb")
ON_NONFINITE = ("stop", "skip")

# Every key of a config and its type, as configs/cifar10.py defines them (a test checks that
# the two agree). A key that is not here is a typo in a config file; ml_collections only
# catches typos on the command line.
SCHEMA: dict[str, type] = {
    "seed": int, "dataset": str, "data_dir": str, "train_split": str, "eval_split": str,
    "image_size": int, "batch_size": int, "data_threads": int, "random_jitter": bool,
    "data_on_device": bool, "steps_per_call": int,
    "num_epochs": int, "num_train_steps": int,
    "color_space": str, "loss": str, "lambda_gp": float, "l1_weight": float, "n_critic": int,
    "ema_decay": float,
    "model.width": int, "model.max_width": int, "model.norm": str, "model.dropout": float,
    "model.critic_width": int, "model.critic_layers": int, "model.conv_impl": str,
    "model.dropout_layers": str, "model.init_std": float,
    "compute_dtype": str,
    "optimizer.generator_lr": float, "optimizer.critic_lr": float, "optimizer.b1": float,
    "optimizer.b2": float, "optimizer.decay_start": float,
    "log_every_steps": int, "eval_every_steps": int, "eval_examples": int,
    "checkpoint_every_steps": int, "keep_checkpoints": int, "sample_epochs": tuple,
    "num_samples": int, "compilation_cache_dir": str,
    "on_nonfinite": str, "allow_config_change": bool,
}
# What a trained workdir's config.json is read for (`inference.read_config`): the keys that
# build the model and read its data. Nothing else in it is used: not the training schedule,
# and never a setting of the machine (compilation_cache_dir, data_threads), which is the
# user's to choose, not a downloaded workdir's.
MODEL_AND_DATA_KEYS = tuple(
    key for key in SCHEMA if key.startswith(("model.", "optimizer.")) or key in (
        "seed", "dataset", "data_dir", "train_split", "eval_split", "image_size",
        "batch_size", "random_jitter", "color_space", "loss", "n_critic", "ema_decay"))
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "True or False",
               tuple: "a tuple of integers"}


def _require(ok: bool, key: str, value, accepted: str) -> None:
  if not ok:
    raise UserError(f"config.{key}={value!r} is invalid: expected {accepted}")


def _has_type(value: Any, kind: type) -> bool:
  if kind is bool:
    return isinstance(value, bool)
  if kind is tuple:  # JSON (config.json) turns tuples into lists.
    return isinstance(value, (tuple, list)) and all(_has_type(v, int) for v in value)
  if isinstance(value, bool):  # bool is an int subclass, but True is not a batch size.
    return False
  if kind is float:
    return isinstance(value, (int, float))
  return isinstance(value, kind)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
  """{"model": {"width": 4}} -> {"model.width": 4}: the dotted keys of a nested dict."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def check_types(flat: dict[str, Any], keys) -> None:
  """Raises UserError on the first of `keys` that `flat` lacks or holds with the wrong type.

  Args:
    flat: a flattened config (`flatten`).
    keys: the dotted keys to check, each a key of `SCHEMA`.
  """
  for key in keys:
    kind = SCHEMA[key]
    if key not in flat:
      raise UserError(f"config.{key} is missing: expected {_TYPE_NAMES[kind]} (see "
                      "configs/cifar10.py for its default)")
    _require(_has_type(flat[key], kind), key, flat[key], _TYPE_NAMES[kind])


def _check_keys_and_types(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """Checks every key is known, present and of its type; returns the flattened config."""
  if not isinstance(config, ml_collections.ConfigDict):  # E.g. get_config() returned None.
    raise UserError(f"the config is a {type(config).__name__}, not an "
                    "ml_collections.ConfigDict: get_config() in the --config file must return "
                    "one (see configs/cifar10.py)")
  flat = flatten(config.to_dict())
  for key in flat:
    if key not in SCHEMA:
      close = difflib.get_close_matches(key, SCHEMA, n=3)
      hint = f"did you mean {' or '.join(close)}?" if close else "no key is close"
      raise UserError(f"config.{key} is not a config key ({hint}); the keys are those of "
                      "configs/cifar10.py")
  check_types(flat, SCHEMA)
  return flat


def check_model_and_data(c: ml_collections.ConfigDict) -> None:
  """Raises UserError on the first inconsistent value of `MODEL_AND_DATA_KEYS` in `c`.

  Args:
    c: a config holding (at least) those keys, of their types (`check_types`).
  """
  _require(c.loss in losses.LOSSES, "loss", c.loss, f"one of {losses.LOSSES}")
  _require(c.color_space in COLOR_SPACES, "color_space", c.color_space,
           f"one of {COLOR_SPACES}")
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


def validate_config(config: ml_collections.ConfigDict, num_devices: int,
                    num_processes: int = 1) -> None:
  """Raises UserError on the first unknown key, wrong type or inconsistent value of `config`.

  Args:
    config: the run config.
    num_devices: devices over which the global batch is split.
    num_processes: processes that each read a part of the global batch.
  """
  flat = _check_keys_and_types(config)
  check_model_and_data(config)
  c = config
  _require(c.compute_dtype in models.COMPUTE_DTYPES, "compute_dtype", c.compute_dtype,
           f"one of {models.COMPUTE_DTYPES}")
  _require(c.on_nonfinite in ON_NONFINITE, "on_nonfinite", c.on_nonfinite,
           f"one of {ON_NONFINITE} (stop the run, or skip the step and count it)")
  for key in ("log_every_steps", "eval_every_steps", "checkpoint_every_steps",
              "keep_checkpoints", "eval_examples", "num_samples", "data_threads"):
    _require(flat[key] >= 1, key, flat[key], "a positive integer")
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
  _require(math.isfinite(c.l1_weight) and (c.l1_weight > 0 if c.loss == "l1"
                                           else c.l1_weight >= 0),
           "l1_weight", c.l1_weight,
           "a positive number for loss='l1', else >= 0 (0: no L1 term)")
  _require(c.num_train_steps > 0 or c.num_epochs > 0, "num_train_steps", c.num_train_steps,
           "> 0, or num_epochs > 0 (num_train_steps wins when > 0)")
  _require(c.batch_size % num_devices == 0 and c.batch_size % num_processes == 0,
           "batch_size", c.batch_size,
           f"a multiple of the device count ({num_devices}) and process count ({num_processes})")
