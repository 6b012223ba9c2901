"""A trained generator from a workdir: its config and its checkpoint, read as data.

A workdir is data, maybe someone else's: `read_config` takes from its config.json only what
builds the model and reads its data, validated, and nothing about the machine (where the
compilation cache lives, where to write; `shared_flags.use_compilation_cache` takes that from
the user), and `restore_generator` reads only the arrays inference uses, checked against the
model that config builds.
"""
import contextlib
import dataclasses
import functools
import json
import logging
import os
from typing import Iterator

from absl import logging as absl_logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from colorize import errors
from colorize import image_files
from colorize import models
from colorize import train_step
from colorize import validation
from colorize.errors import UserError


@dataclasses.dataclass(frozen=True)
class Generator:
  """A trained generator restored from a workdir: the module and its inference variables.

  Attributes:
    module: the U-Net (its fields come from the run's config).
    variables: {"params": EMA params when the run kept them, else the generator's params,
      "batch_stats": their batch-norm statistics, only for batch norm}.
    color_space: the run's colour space, "lab" or "rgb".
    image_size: the training resolution (square).
    step: the checkpoint's training step.
  """
  module: models.UNetGenerator
  variables: dict
  color_space: str
  image_size: int
  step: int


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """Reads what builds a run's model and reads its data from `<workdir>/config.json`.

  Only the keys under `validation.MODEL_AND_DATA` are read (see there why), each checked for
  its type and value as a training config's are; the rest keeps configs/cifar10.py's default.

  Args:
    workdir: a training workdir.

  Returns:
    A config with every key: those from the file, the others at their defaults.

  Raises:
    UserError: no readable config.json in `workdir`, or one with a key missing, of the
      wrong type or with an invalid value (the message names the file and the key).
  """
  path = os.path.join(workdir, "config.json")
  try:
    if os.path.lexists(path) and not image_files.is_regular_file(path):
      raise ValueError("not a regular file")  # A FIFO would block the read forever.
    with open(path, encoding="utf-8") as f:
      saved = json.load(f)
  except FileNotFoundError:
    raise UserError(f"{workdir}: no config.json; is this a training workdir "
                    "(python -m colorize.main --workdir=...)?") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{workdir}: cannot read config.json ({e})") from None
  if not isinstance(saved, dict):
    raise UserError(f"{path} holds a JSON {type(saved).__name__}, not an object; the "
                    "workdir is damaged")
  try:
    config = validation.checked(saved, validation.MODEL_AND_DATA)
    validation.check_model_and_data(config)
  except UserError as e:
    raise UserError(f"{path}: {e}; the workdir is damaged, or from another version of "
                    "colorize") from None
  return config


def restore_generator(workdir: str, step: int | None = None) -> Generator:
  """Restores the generator (EMA params when present, batch stats) of a checkpoint.

  Only the arrays inference uses are read from disk (Orbax partial restore): not the critic,
  not the optimizer states (twice the generator), and not the raw params when there is an EMA.

  Args:
    workdir: a training workdir (config.json and checkpoints/<step>/).
    step: the checkpoint to restore; the latest when None.

  Returns:
    The restored generator.

  Raises:
    UserError: no config, no checkpoint (at `step`), or a checkpoint whose arrays do not
      match the config's model; the one-line message names the workdir.
  """
  config = read_config(workdir)
  try:
    abstract = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                              jax.random.key(0))
  except (AttributeError, KeyError, TypeError, ValueError) as e:
    raise UserError(f"{workdir}: config.json does not describe a model this version can "
                    f"build ({type(e).__name__}: {e})") from None
  checkpoints = os.path.abspath(os.path.join(workdir, "checkpoints"))
  steps = []
  if os.path.isdir(checkpoints):
    # read_only: inference must never touch a workdir, e.g. one that is still training.
    with _quiet_orbax():
      manager = ocp.CheckpointManager(checkpoints, options=ocp.CheckpointManagerOptions(
          read_only=True, create=False, save_interval_steps=0))
    steps = manager.all_steps()
  if not steps:
    raise UserError(f"{workdir}: no checkpoint in {checkpoints}; train first "
                    f"(python -m colorize.main --workdir={workdir} ...)")
  step = max(steps) if step is None else step
  if step not in steps:
    raise UserError(f"{workdir}: no checkpoint at step {step} (available: "
                    f"{', '.join(map(str, sorted(steps)))})")

  # Empty subtrees (no batch stats) are not on disk as arrays: leave them out.
  names = (("gen_params", "gen_batch_stats") if abstract.ema_params is None
           else ("ema_params", "ema_batch_stats"))
  target = {name: getattr(abstract, name) for name in names if getattr(abstract, name)}
  errors.drop_failed_restore_reports(checkpoints)
  try:
    restored = manager.restore(step, args=ocp.args.PyTreeRestore(
        item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target),
        partial_restore=True))
  # Arrays the config expects but the checkpoint lacks raise KeyError/ValueError; damaged
  # files raise those, JSONDecodeError or a bare Exception from TensorStore.
  except Exception as e:  # pylint: disable=broad-exception-caught
    raise UserError(f"{workdir}: cannot restore checkpoint {step} for config.json's model "
                    f"({type(e).__name__}: {errors.first_line(e, 200)}); was config.json "
                    "edited, or is the checkpoint damaged (--step picks another)?") from None
  _check_shapes(target, restored, f"{workdir}: checkpoint {step}")
  variables = train_step.inference_variables(abstract.replace(**restored))
  return Generator(module=abstract.generator, variables=jax.device_put(variables),
                   color_space=config.color_space, image_size=config.image_size, step=step)


@contextlib.contextmanager
def _quiet_orbax() -> Iterator[None]:
  """Drops Orbax's warnings meanwhile: it warns that a read-only manager is read-only."""
  def keep(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR or "/orbax/" not in record.pathname
  logger = absl_logging.get_absl_logger()
  logger.addFilter(keep)
  try:
    yield
  finally:
    logger.removeFilter(keep)


def _check_shapes(expected, restored, where: str) -> None:
  """Checks what a partial restore returned against its target.

  Partial restore returns arrays with their saved shapes, whatever the target says, and
  gives back the target's own ShapeDtypeStruct for an array that is not on disk.
  """
  expected_leaves = dict(jax.tree_util.tree_leaves_with_path(expected))
  restored_leaves = dict(jax.tree_util.tree_leaves_with_path(restored))
  for path, leaf in expected_leaves.items():
    got = restored_leaves.get(path)
    missing = not isinstance(got, (np.ndarray, jax.Array))
    if missing or got.shape != leaf.shape:
      found = "missing" if missing else f"shape {got.shape}"
      raise UserError(f"{where} does not match config.json: {jax.tree_util.keystr(path)} is "
                      f"{found} on disk, the config's model needs {leaf.shape} (was "
                      "config.json edited, or the checkpoint written by another config?)")
