"""`train_and_evaluate(config, workdir)`: the one training loop, read top to bottom.

Build the mesh, init the state abstractly, restore the latest checkpoint or init, then train:
each iteration is `train_step.train_iteration` compiled with jit over all devices (batch
sharded on "data", state replicated and donated). Along the way: metrics to TensorBoard and
metrics.jsonl, evaluation on a fixed subset of the eval split, sample grids, checkpoints, and
at the end the loss curves.
"""
import functools
import json
import os

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from colorize import color
from colorize import input_pipeline
from colorize import metrics as metrics_lib
from colorize import plots
from colorize import train_step
from colorize import validation

EVAL_BATCH = 64  # Eval batches are padded to this size so one compiled shape serves all.


def num_train_steps(config: ml_collections.ConfigDict) -> int:
  """Training iterations: `num_train_steps` when > 0, else `num_epochs` epochs."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config.num_epochs * input_pipeline.steps_per_epoch(config)


def _abstract_state(config, rng, sharding):
  """Shapes, dtypes and shardings of the state: the init output and the restore target."""
  abstract = jax.eval_shape(functools.partial(train_step.create_train_state, config), rng)
  return jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)


def restore_or_init(config: ml_collections.ConfigDict, manager: ocp.CheckpointManager,
                    rng: jax.Array, sharding: jax.sharding.Sharding) -> train_step.TrainState:
  """Restores the latest checkpoint in `manager`, or initialises a new state.

  Args:
    config: the run config (defines the state's structure and shapes).
    manager: the run's checkpoint manager.
    rng: the init key (used only when there is no checkpoint).
    sharding: where every array of the state lives (replicated over the mesh).

  Returns:
    The restored or new state, committed to `sharding`.
  """
  target = _abstract_state(config, rng, sharding)
  step = manager.latest_step()
  if step is not None:
    logging.info("Resuming from checkpoint at step %d in %s", step, manager.directory)
    return manager.restore(step, args=ocp.args.StandardRestore(target))
  logging.info("No checkpoint in %s; initialising step 0", manager.directory)
  out_sharding = jax.tree.map(lambda a: a.sharding, target)
  init = jax.jit(functools.partial(train_step.create_train_state, config),
                 out_shardings=out_sharding).lower(rng)
  # Runs once: LLVM's optimisations would cost ~6 s of compile time to save microseconds.
  return init.compile({"xla_backend_optimization_level": 0})(rng)


def _evaluate(predict, state, eval_images, color_space) -> dict[str, float]:
  """L1 of the colour channels and PSNR in RGB over the eval images (data range 1)."""
  l1, psnr = [], []
  for i in range(0, len(eval_images), EVAL_BATCH):
    chunk = eval_images[i:i + EVAL_BATCH]
    padded = np.concatenate([chunk, np.zeros((EVAL_BATCH - len(chunk),) + chunk.shape[1:],
                                              chunk.dtype)])
    rgb = np.asarray(predict(state, padded))[:len(chunk)]
    real = chunk.astype(np.float32) / 255.0
    _, target_real = color.encode(chunk, color_space)
    _, target_fake = color.encode(np.round(rgb * 255).astype(np.uint8), color_space)
    l1.append(metrics_lib.mean_absolute_error(target_fake, target_real))
    psnr.append(metrics_lib.psnr(rgb, real))
  return {"eval_l1": float(np.mean(np.concatenate(l1))),
          "eval_psnr": float(np.mean(np.concatenate(psnr)))}


def _sample_grid(predict, state, images, color_space) -> np.ndarray:
  """The grayscale | generated | real picture of `images` (uint8 [N, S, S, 3])."""
  cond, _ = color.encode(images, color_space)
  return plots.sample_grid(np.asarray(color.condition_to_rgb(cond, color_space)),
                           np.asarray(predict(state, images)), images)


def _log(writer, jsonl_path: epath.Path | None, step: int, scalars: dict[str, float]) -> None:
  """Writes scalars to TensorBoard and, on the main process, as one line of metrics.jsonl."""
  writer.write_scalars(step, scalars)
  if jsonl_path is not None:
    with jsonl_path.open("a") as f:
      f.write(json.dumps({"step": step, **scalars}) + "\n")


def _check_finite(step: int, metrics: dict[str, float], manager: ocp.CheckpointManager):
  for name, value in metrics.items():
    if not np.isfinite(value):
      last = manager.latest_step()
      kept = (f"the last good checkpoint is step {last} in {manager.directory}"
              if last is not None else "no checkpoint was saved yet")
      raise FloatingPointError(
          f"non-finite {name}={value} at step {step} (mean since the last log); stopped "
          f"without saving it: {kept}")


def _truncate_jsonl(path: epath.Path, last_step: int) -> None:
  """Drops log lines past the restored step, so a resumed run does not log steps twice.

  A line cut short by a killed process is dropped too.
  """
  if not path.exists():
    return
  kept = []
  for line in path.read_text().splitlines():
    try:
      if json.loads(line)["step"] <= last_step:
        kept.append(line + "\n")
    except (json.JSONDecodeError, KeyError, TypeError):
      continue
  path.write_text("".join(kept))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> train_step.TrainState:
  """Trains (or resumes training) and evaluates; all outputs go to `workdir`.

  Args:
    config: the run config (see configs/cifar10.py).
    workdir: where checkpoints, logs, samples and plots are written; resumed from if it
      already holds a checkpoint.

  Returns:
    The final training state.
  """
  validation.validate_config(config, jax.device_count(), jax.process_count())
  if config.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.expanduser(config.compilation_cache_dir))
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  is_main = jax.process_index() == 0
  if is_main:
    (workdir / "config.json").write_text(config.to_json(indent=2))
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_main)
  hp = train_step.StepConfig.from_config(config)
  total_steps = num_train_steps(config)
  steps_per_epoch = input_pipeline.steps_per_epoch(config)

  # One data-parallel axis over every device of every process.
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(None, "data"))  # [K, B, H, W, 3], B split.
  init_rng, train_key = jax.random.split(jax.random.key(config.seed))

  manager = ocp.CheckpointManager(
      (workdir / "checkpoints").resolve(),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints, create=True))
  state = restore_or_init(config, manager, init_rng, replicated)
  start_step = int(state.step)
  metrics_path = workdir / "metrics.jsonl"
  if is_main:
    _truncate_jsonl(metrics_path, start_step)

  train_fn = train_step.jit_train_iteration(hp)
  train_key = jax.device_put(train_key, replicated)
  predict = jax.jit(functools.partial(train_step.colorize, color_space=config.color_space))
  eval_images = input_pipeline.eval_images(config, config.eval_examples)
  sample_images = eval_images[:config.num_samples]
  sample_steps = {e * steps_per_epoch: f"epoch_{e:03d}" for e in config.sample_epochs}
  batches = input_pipeline.train_batches(
      config, start_step=start_step, num_steps=total_steps,
      process_index=jax.process_index(), process_count=jax.process_count())

  logging.info("Training steps %d..%d (%d per epoch), global batch %d on %d devices",
               start_step, total_steps, steps_per_epoch, config.batch_size, jax.device_count())
  report_progress = periodic_actions.ReportProgress(
      num_train_steps=total_steps, writer=writer, every_steps=config.log_every_steps)
  pending = []  # Per-step device metrics since the last flush; fetched in one transfer.
  # Whatever ends the loop (an error included), an async save already started must finish:
  # it is the last good checkpoint.
  try:
    for step in range(start_step + 1, total_steps + 1):  # `step` iterations done after it.
      batch = jax.make_array_from_process_local_data(batch_sharding, next(batches))
      state, step_metrics = train_fn(state, batch, train_key)
      pending.append(step_metrics)
      report_progress(step)
      is_last = step == total_steps
      save = step % config.checkpoint_every_steps == 0 or is_last

      # Metrics are checked before every save, so nothing non-finite is ever checkpointed.
      if step % config.log_every_steps == 0 or save:
        window = jax.device_get(pending)
        pending = []
        summary = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
        _check_finite(step, summary, manager)
        _log(writer, metrics_path if is_main else None, step, summary)
      if step % config.eval_every_steps == 0 or is_last:
        _log(writer, metrics_path if is_main else None, step,
             _evaluate(predict, state, eval_images, config.color_space))
      if step in sample_steps or is_last:
        grid = _sample_grid(predict, state, sample_images, config.color_space)
        name = sample_steps.get(step, f"step_{step:07d}")
        writer.write_images(step, {f"samples/{name}": grid[None]})
        if is_main:
          plots.save_png(workdir / "samples" / f"{name}.png", grid)
      if save:
        manager.save(step, args=ocp.args.StandardSave(state))
  finally:
    manager.wait_until_finished()
    writer.flush()
  if is_main:
    plots.plot_curves(str(metrics_path), str(workdir / "plots"))
  writer.close()
  return state
