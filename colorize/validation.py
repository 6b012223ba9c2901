"""Config checks that run before anything is built or compiled.

Each failure is a `UserError` whose one line names the key, the value and what is accepted.
"""
import ml_collections

from colorize import conv
from colorize import losses
from colorize import models
from colorize.errors import UserError

COLOR_SPACES = ("lab", "rgb")


def _require(ok: bool, key: str, value, accepted: str) -> None:
  if not ok:
    raise UserError(f"config.{key}={value!r} is invalid: expected {accepted}")


def _get(config: ml_collections.ConfigDict, dotted_key: str):
  for part in dotted_key.split("."):
    config = config[part]
  return config


def validate_config(config: ml_collections.ConfigDict, num_devices: int,
                    num_processes: int = 1) -> None:
  """Raises UserError on the first inconsistent value of `config`.

  Args:
    config: the run config.
    num_devices: devices over which the global batch is split.
    num_processes: processes that each read a part of the global batch.
  """
  c = config
  _require(c.loss in losses.LOSSES, "loss", c.loss, f"one of {losses.LOSSES}")
  _require(c.color_space in COLOR_SPACES, "color_space", c.color_space,
           f"one of {COLOR_SPACES}")
  _require(c.model.norm in models.NORMS, "model.norm", c.model.norm, f"one of {models.NORMS}")
  _require(c.model.conv_impl in conv.IMPLS, "model.conv_impl", c.model.conv_impl,
           f"one of {conv.IMPLS}")
  size = c.image_size
  _require(isinstance(size, int) and size >= 4 and size & (size - 1) == 0, "image_size", size,
           "a power of two >= 4 (the U-Net halves it down to 1x1)")
  _require(c.model.critic_layers >= 1 and size >> c.model.critic_layers >= 2,
           "model.critic_layers", c.model.critic_layers,
           f"1..{max(1, size.bit_length() - 2)} for image_size={size} (patches of >= 2x2)")
  for key in ("model.width", "model.max_width", "model.critic_width", "batch_size",
              "n_critic", "log_every_steps", "eval_every_steps", "checkpoint_every_steps",
              "keep_checkpoints", "eval_examples", "num_samples", "data_threads"):
    value = _get(c, key)
    _require(isinstance(value, int) and value >= 1, key, value, "a positive integer")
  for key in ("generator_lr", "critic_lr"):
    _require(c.optimizer[key] > 0, f"optimizer.{key}", c.optimizer[key], "a positive number")
  for key in ("b1", "b2"):
    _require(0 <= c.optimizer[key] < 1, f"optimizer.{key}", c.optimizer[key], "in [0, 1)")
  for key in ("lambda_gp", "l1_weight"):
    _require(c[key] >= 0, key, c[key], "a non-negative number")
  _require(0 <= c.model.dropout < 1, "model.dropout", c.model.dropout, "in [0, 1)")
  _require(0 <= c.ema_decay < 1, "ema_decay", c.ema_decay, "in [0, 1) (0 disables the EMA)")
  _require(c.num_train_steps > 0 or c.num_epochs > 0, "num_train_steps", c.num_train_steps,
           "> 0, or num_epochs > 0 (num_train_steps wins when > 0)")
  _require(c.batch_size % num_devices == 0 and c.batch_size % num_processes == 0,
           "batch_size", c.batch_size,
           f"a multiple of the device count ({num_devices}) and process count ({num_processes})")
