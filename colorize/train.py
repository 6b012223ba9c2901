"""`train_and_evaluate(config, workdir)`: the one training loop, read top to bottom.

Validate the config and open the data, check the workdir, build the mesh, init the state
abstractly, restore the newest readable checkpoint or init, then train in calls of
config.steps_per_call iterations (`train_calls`: `train_step.train_iteration`, guarded against
NaN/Inf by `nonfinite`, in a scan compiled with jit over all devices; batch sharded on "data",
state replicated and donated on GPU/TPU), fed by the host pipeline or, with
config.data_on_device, from the training split held on the devices (`device_data`). Between
calls: metrics to TensorBoard and metrics.jsonl, evaluation on a fixed subset of the eval
split, sample grids, checkpoints, and at the end the loss curves; calls end exactly at the
steps where these happen. SIGTERM or Ctrl-C saves the current step and returns early
(`preemption`); one run at a time holds the workdir (`workdir.lock`), and nothing in it
changes before the restore. docs/reliability.md states the guarantees.
"""
import contextlib
import functools
import json
import os

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from colorize import atomic
from colorize import batches
from colorize import checkpointing
from colorize import color
from colorize import console
from colorize import device_data
from colorize import image_files
from colorize import input_pipeline
from colorize import metric_writer
from colorize import nonfinite
from colorize import plots
from colorize import preemption
from colorize import rebalance
from colorize import scoring
from colorize import train_calls
from colorize import train_step
from colorize import validation
from colorize import workdir as workdir_lib
from colorize.errors import UserError

# Training batches over which the EMA weights' batch-norm statistics are averaged: enough
# that the estimate's noise is small next to the statistics' change between checkpoints.
EMA_STATS_BATCHES = 50
_EVAL_SHOWN = ("eval_psnr", "eval_l1", "eval_delta_e2000", "eval_colorfulness_ratio")


def num_train_steps(config: ml_collections.ConfigDict) -> int:
  """Training iterations: `num_train_steps` when > 0, else `num_epochs` epochs."""
  if config.num_train_steps > 0:
    return config.num_train_steps
  return config.num_epochs * input_pipeline.steps_per_epoch(config)


def restore_or_init(config: ml_collections.ConfigDict, manager: ocp.CheckpointManager,
                    rng: jax.Array, sharding: jax.sharding.Sharding) -> train_step.TrainState:
  """Restores the newest readable checkpoint in `manager`, or initialises a new state.

  An unreadable newest checkpoint is reported and set aside, and the one before it restored
  (`checkpointing.restore_latest`).

  Args:
    config: the run config (defines the state's structure and shapes).
    manager: the run's checkpoint manager.
    rng: the init key (used only when there is no checkpoint).
    sharding: where every array of the state lives (replicated over the mesh).

  Returns:
    The restored or new state, committed to `sharding`.

  Raises:
    UserError: there are checkpoints but none can be restored, or the disk cannot hold one.
  """
  # Shapes, dtypes and shardings of the state: the init output and the restore target.
  abstract = jax.eval_shape(functools.partial(train_step.create_train_state, config), rng)
  target = jax.tree.map(
      lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sharding), abstract)
  checkpointing.check_free_space(epath.Path(manager.directory), target)
  state = checkpointing.restore_latest(manager, target)
  if state is not None:
    logging.info("Resuming from checkpoint at step %d in %s", int(state.step),
                 manager.directory, extra=console.EVENT)
    return state
  logging.info("No checkpoint in %s; initialising step 0", manager.directory)
  init = jax.jit(functools.partial(train_step.create_train_state, config),
                 out_shardings=sharding).lower(rng)
  # Runs once: LLVM's optimisations would cost more compile time than they save.
  return init.compile({"xla_backend_optimization_level": 0})(rng)


def _evaluate(predict, state, eval_images: np.ndarray) -> dict[str, float | None]:
  """The results table's metrics (scoring) on the eval images, keys prefixed eval_.

  Outputs are scored as saved, 8-bit sRGB, exactly as `python -m colorize.evaluate` scores
  them; `eval_l1` is the mean |ab error| / 110 and `eval_psnr` the pooled PSNR on sRGB in
  [0, 1]. A metric undefined on the eval images (e.g. all grayscale) is None.
  """
  size = scoring.DEFAULT_BATCH_SIZE  # Padded to it: one compiled shape serves every batch.
  outputs = [np.round(np.asarray(predict(state, batch))[:n] * 255).astype(np.uint8)
             for (batch,), n in batches.padded([eval_images], size)]
  summary = scoring.evaluate_arrays(np.concatenate(outputs), eval_images, batch_size=size)
  return {f"eval_{name}": value for name, value in summary.items()}


def _ema_stats_batches(config: ml_collections.ConfigDict, sharding) -> jax.Array:
  """The generator batches of the run's first EMA_STATS_BATCHES steps: [N, B, S, S, 3]."""
  batches = input_pipeline.train_batches(
      config, start_step=0, num_steps=EMA_STATS_BATCHES, process_index=jax.process_index(),
      process_count=jax.process_count())
  local = np.stack([batch[-1] for batch in batches])  # The last batch is the generator's.
  return jax.make_array_from_process_local_data(sharding, local)


def _sample_grid(predict, state, images, color_space) -> np.ndarray:
  """The grayscale | generated | real picture of `images` (uint8 [N, S, S, 3])."""
  cond, _ = color.encode(images, color_space)
  gray, generated = color.condition_to_rgb(cond, color_space), predict(state, images)
  return plots.labelled_grid([("grayscale", np.asarray(gray)),
                              ("generated", np.asarray(generated)), ("real", images)])


def _next_stop(step: int, total_steps: int, config: ml_collections.ConfigDict,
               sample_steps: dict[int, str]) -> int:
  """The first step after `step` at which the loop logs, evaluates, saves, samples or ends."""
  intervals = (config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps)
  stops = [step + every - step % every for every in intervals]
  stops += [s for s in sample_steps if s > step]
  return min(total_steps, *stops)


def _last_good(manager: ocp.CheckpointManager) -> str:
  last = manager.latest_step()
  return (f"the last good checkpoint is step {last} in {manager.directory}"
          if last is not None else "no checkpoint was saved yet")


def _truncate_jsonl(path: epath.Path, last_step: int, workdir: epath.Path) -> None:
  """Drops log lines past the restored step, so a resumed run does not log steps twice.

  A line cut short by a killed process is dropped too, as is any other line that is not a
  JSON object with a step (invalid UTF-8 included). The file is always rewritten, atomically:
  a kill during the rewrite must not lose the lines kept, and the appends that follow must go
  to a file of the workdir's own, not through a link planted in its place.
  """
  kept = []
  for line in (path.read_bytes().splitlines() if path.exists() else []):
    try:
      if json.loads(line.decode("utf-8"))["step"] <= last_step:
        kept.append(line + b"\n")
    except (ValueError, KeyError, TypeError):  # (UnicodeDecodeError is a ValueError.)
      continue
  atomic.write_bytes(path, b"".join(kept), inside=workdir)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> train_step.TrainState:
  """Trains (or resumes training) and evaluates; all outputs go to `workdir`.

  Args:
    config: the run config (see configs/cifar10.py).
    workdir: where checkpoints, logs, samples and plots are written; resumed from if it
      already holds a checkpoint.

  Returns:
    The final training state; after a SIGTERM or Ctrl-C, the state of the step it saved and
    stopped at.

  Raises:
    UserError: a bad config, dataset or workdir (unwritable, full, trained with another model
      or data, no restorable checkpoint); `colorize.main` prints it as one line.
    FloatingPointError: a non-finite value with config.on_nonfinite="stop".
  """
  if not os.fspath(workdir).strip():  # E.g. --workdir=$UNSET: not the current directory.
    raise UserError("--workdir is empty (an unset shell variable?); give the run's directory")
  # SIGTERM is caught from the start: one that arrives during start-up (data preparation,
  # compilation) ends the run as soon as start-up is done, without training a step.
  # `held` holds the workdir's lock from when the body takes it to the end.
  with preemption.Watch() as watch, contextlib.ExitStack() as held:
    return _train_and_evaluate(config, epath.Path(workdir), watch, held)


def _train_and_evaluate(config: ml_collections.ConfigDict, workdir: epath.Path,
                        watch: preemption.Watch,
                        held: contextlib.ExitStack) -> train_step.TrainState:
  """The body of `train_and_evaluate`: stop requests come from `watch`, `held` keeps the lock."""
  validation.validate_config(config, jax.device_count(), jax.process_count())
  if config.compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir",
                      os.path.expanduser(config.compilation_cache_dir))
  # The data is opened before the workdir is touched: a wrong dataset fails first.
  total_steps = num_train_steps(config)
  steps_per_epoch = input_pipeline.steps_per_epoch(config)
  eval_images = input_pipeline.eval_images(config, config.eval_examples)
  train_images = input_pipeline.train_array(config) if config.data_on_device else None
  # The classes of the training images, for a generator that classifies them.
  labels = input_pipeline.label_array(config) if config.model.num_classes else None
  ab_counts = None
  if config.l1_rebalance > 0:  # Counted at every start: the weights follow the data read.
    ab_counts = rebalance.ab_histogram(
        input_pipeline.train_images(config) if train_images is None else train_images)
  workdir_lib.check_writable(workdir)
  held.enter_context(workdir_lib.lock(workdir))  # Before anything else in it changes.
  checkpoints = workdir / "checkpoints"
  # Orbax wants an absolute path; resolve() would turn gs://b/run into ./gs:/b/run.
  checkpoints = checkpoints if "://" in os.fspath(checkpoints) else checkpoints.resolve()
  if checkpoints.exists() and not checkpoints.is_dir():
    raise UserError(f"{checkpoints} is not a directory; move it out of the workdir, or use "
                    "another --workdir")
  manager = checkpointing.create_manager(checkpoints, config.keep_checkpoints)
  changes = workdir_lib.check_resumable(workdir, config) if manager.all_steps() else []
  is_main = jax.process_index() == 0
  hp = train_step.StepConfig.from_config(config, total_steps, ab_counts)
  if hp.l1_class_weights is not None:
    weights = np.asarray(hp.l1_class_weights)[ab_counts > 0]
    logging.info("L1 rebalanced over %d ab bins of the training split: weights %.2f to %.2f",
                 weights.size, weights.min(), weights.max())

  # One data-parallel axis over every device of every process.
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  replicated = NamedSharding(mesh, P())
  batch_sharding = NamedSharding(mesh, P(None, "data"))  # [K, B, H, W, 3], B split.
  init_rng, train_key = jax.random.split(jax.random.key(config.seed))

  try:
    state = restore_or_init(config, manager, init_rng, replicated)
  except UserError:
    if not changes:
      raise
    raise UserError(f"the checkpoints in {checkpoints} cannot be restored with the changed "
                    f"config ({', '.join(changes)}; let through by "
                    "config.allow_config_change); the workdir is unchanged: resume it with "
                    "its own values, or train the new config in a new --workdir") from None
  start_step = int(state.step)
  # Only now, restored and about to train, does the run write to the workdir.
  metrics_path = workdir / "metrics.jsonl"
  if is_main:
    workdir_lib.write_config(workdir, config)
    _truncate_jsonl(metrics_path, start_step, workdir)
  writer = metric_writer.MetricWriter(workdir, is_main)

  # (device_put cannot place an array on other processes' devices; jit can.)
  train_key = jax.jit(lambda: train_key, out_shardings=replicated)()
  predict = jax.jit(functools.partial(train_step.colorize, color_space=config.color_space))
  if config.ema_decay > 0 and config.model.norm == "batch":
    # Before every eval, sample grid and checkpoint, so what is evaluated and saved has
    # statistics that match its EMA weights.
    stats_images = _ema_stats_batches(config, batch_sharding)
    stats_key = jax.random.fold_in(init_rng, 1)
    recompute = jax.jit(functools.partial(train_step.ema_batch_stats, hp=hp))
    with_ema_stats = lambda state: recompute(state, stats_images, stats_key)
  else:
    with_ema_stats = lambda state: state
  sample_images = eval_images[:config.num_samples]
  sample_steps = {e * steps_per_epoch: f"epoch_{e:03d}" for e in config.sample_epochs}
  steps_per_call = train_calls.steps_per_call(config)
  if train_images is not None:  # The host sends crop plans; the pixels are on the devices.
    split = device_data.put(train_images, mesh)
    sharded = not split.sharding.is_fully_replicated
    inputs = input_pipeline.train_plans(config, train_images.shape[1:3], start_step=start_step,
                                        num_steps=total_steps)
    input_sharding = replicated  # Every process computes the global batch's plans.
    label_args = {}
    train_fn = train_calls.jit_train_call(hp, config.on_nonfinite, mesh=mesh, sharded=sharded,
                                          image_size=config.image_size)
    logging.info("Training split on the devices: %s, %.1f MB, %s", train_images.shape,
                 train_images.nbytes / 1e6, "sharded" if sharded else "replicated")
    del train_images  # The host copy is no longer needed.
  else:
    split = None
    inputs = input_pipeline.train_batches(
        config, start_step=start_step, num_steps=total_steps,
        process_index=jax.process_index(), process_count=jax.process_count())
    input_sharding = NamedSharding(mesh, P(None, None, "data"))  # [n, K, B, H, W, 3].
    label_args = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    train_fn = train_calls.jit_train_call(hp, config.on_nonfinite)

  if labels is not None:  # The classes of the batches above, in their order and sharding.
    labels = input_pipeline.train_labels(config, labels, start_step=start_step,
                                         num_steps=total_steps, **label_args)
  logging.info("Training steps %d..%d (%d per epoch), global batch %d on %d devices, %d "
               "steps per call", start_step, total_steps, steps_per_epoch, config.batch_size,
               jax.device_count(), steps_per_call)
  progress = console.Progress(total_steps)
  if watch.stop_requested:  # Nothing was trained since the checkpoint: nothing to save.
    logging.warning("%s during start-up: stopping at step %d; run the same command to "
                    "resume", watch.stop_requested, start_step)
    writer.close()
    return state
  pending = []  # Per-call device metrics and flags since the last flush; one transfer.
  preempted = False
  step, calls = start_step, 0  # `step` iterations done.
  try:
    while step < total_steps:
      # K iterations, or one when fewer than K are left before the next stop.
      left = _next_stop(step, total_steps, config, sample_steps) - step
      n = steps_per_call if left >= steps_per_call else 1
      xs = jax.make_array_from_process_local_data(
          input_sharding, np.stack([next(inputs) for _ in range(n)]))
      ys = None if labels is None else jax.make_array_from_process_local_data(
          input_sharding, np.stack([next(labels) for _ in range(n)]))
      state, call_metrics, finite = train_fn(state, xs, train_key, split, ys)
      pending.append((call_metrics, finite))
      step, calls = step + n, calls + 1
      progress.update(step)
      is_last = step == total_steps
      # (At the last step a notice changes nothing: the run ends and saves anyway.) The
      # multi-host protocol counts calls: it stops every host after the same call.
      preempted = watch.reached(calls, manager) and not is_last
      save = step % config.checkpoint_every_steps == 0 or is_last or preempted

      # Checked before every save, so nothing non-finite is ever checkpointed.
      if step % config.log_every_steps == 0 or save:
        window = train_calls.per_step(jax.device_get(pending))
        summary = nonfinite.summarize(window, step - len(window) + 1, config.on_nonfinite,
                                      state, _last_good(manager))
        pending = []
        writer.write_scalars(step, summary)
        writer.write_scalars(step, {"steps_per_sec": progress.rate(step)}, jsonl=False)
        progress.update(step, summary)
        logging.info("%s  %s", progress.describe(step),
                     ", ".join(f"{k}={v:.5g}" for k, v in summary.items()))
      evaluate_now = step % config.eval_every_steps == 0 or is_last
      sample_now = step in sample_steps or is_last
      if save or evaluate_now or sample_now:
        state = with_ema_stats(state)
      if preempted:  # Save and go: the scheduler's clock is running.
        checkpointing.save(manager, step, state)
        logging.warning("%s at step %d: saving it in %s; run the same command to resume",
                        "Interrupted (Ctrl-C)" if watch.stop_requested == "SIGINT" else
                        "Preempted (SIGTERM)", step, manager.directory)
        break
      try:
        if evaluate_now:
          scalars = _evaluate(predict, state, eval_images)
          writer.write_scalars(step, scalars)
          logging.info("Step %d eval: %s (all in metrics.jsonl)", step, ", ".join(
              f"{k} {scalars[k]:.4g}" for k in _EVAL_SHOWN if scalars.get(k) is not None),
                       extra=console.EVENT)
        if sample_now:
          grid = _sample_grid(predict, state, sample_images, config.color_space)
          name = sample_steps.get(step, f"step_{step:07d}")
          writer.write_image(step, f"samples/{name}", grid)
          if is_main:
            image_files.save_image(grid, workdir / "samples" / f"{name}.png", inside=workdir)
      finally:  # An eval or sample that fails must not cost this step's checkpoint.
        if save:
          checkpointing.save(manager, step, state)
          logging.info("Saving checkpoint step %d", step, extra=console.EVENT)
  except BaseException:
    # Whatever ended the loop, an async save already started must finish: it is the last
    # good checkpoint. If writing it failed too (a full disk fails every write), that error
    # is raised instead: it says which checkpoints are intact.
    checkpointing.wait_until_finished(manager)
    raise
  finally:
    writer.flush()
  checkpointing.wait_until_finished(manager)
  if is_main and not preempted:
    plots.plot_curves(str(metrics_path), str(workdir / "plots"), inside=workdir)
  writer.close()
  logging.info("Outputs in %s: checkpoints/, metrics.jsonl, samples/, plots/, TensorBoard "
               "events", workdir, extra=console.EVENT)
  return state
