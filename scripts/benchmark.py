r"""Training-step benchmark: compile time, step times, images/s, input-pipeline share, memory.

    python scripts/benchmark.py --config=configs/cifar10.py:subset --batch=16,64 [--compare_torch]

(`:subset` reads the offline CIFAR-10 subset for the pipeline measurement; `--nopipeline`
skips that measurement for configs whose data is not at hand.)

For each batch size, after warm-up, times the critic step, the generator step and the full
iteration (`n_critic` critic steps + 1 generator step) on on-device synthetic batches (median,
min, max over at least `--min_time` seconds), then the iteration fed by the real input
pipeline, and reports the share of time the pipeline adds. Prints one JSON line per
measurement (`framework`, `batch`, `imgs_per_s`, `iter_ms`, `compile_s`, ...) and a table.

Compile time is measured twice in a fresh persistent compilation cache: `compile_s` cold,
`compile_cached_s` from the cache (what a rerun or resumed run pays; the trainer's cache is
`config.compilation_cache_dir`). `gflops_per_iter` is XLA's cost analysis of the iteration;
with `--peak_tflops` the record adds the achieved fraction of that peak. `peak_mem_mib` is
reported where the backend tracks memory (GPU/TPU; not XLA:CPU).

`--compare_torch` runs `../shared/bench/torch_reference.py` (PyTorch eager, the same layers and
parameter counts: G 16,655,554, D 663,745) in a subprocess after each JAX measurement of the
same batch size, interleaved on the same machine. The JAX side then uses the reference's
optimizer, Adam(1e-4, 0.5, 0.9). torch is not a dependency of the package.
"""
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from colorize import input_pipeline  # pylint: disable=g-import-not-at-top
from colorize import nonfinite
from colorize import train_step
from colorize.errors import UserError

TORCH_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "bench", "torch_reference.py")
REFERENCE_PARAMS = {"g_params": 16_655_554, "d_params": 663_745}  # Its G and D at 32x32.

config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=False)
flags.DEFINE_list("batch", ["16", "64"], "Global batch sizes to measure.")
flags.DEFINE_float("min_time", 6.0, "Seconds each timed loop runs at least.")
flags.DEFINE_bool("compare_torch", False, "Also run the PyTorch reference, interleaved.")
flags.DEFINE_alias("compare-torch", "compare_torch")
flags.DEFINE_bool("pipeline", True, "Also time the iteration fed by the real input pipeline.")
flags.DEFINE_float("peak_tflops", 0.0, "The device's peak TFLOP/s for the dtype in use (e.g. "
                   "an H100 SXM's dense bf16 989); > 0 adds the model FLOP utilisation.")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS


def _timed(fn, min_time: float, min_iters: int = 5) -> list[float]:
  """Seconds per call of `fn` (which blocks on its result), over >= min_time and min_iters."""
  times, start = [], time.perf_counter()
  while len(times) < min_iters or time.perf_counter() - start < min_time:
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return times


def _compile(fn, *args) -> tuple[object, float]:
  t0 = time.perf_counter()
  compiled = jax.jit(fn, donate_argnums=train_step.donated_state()).lower(*args).compile()
  return compiled, time.perf_counter() - t0


def _count(params) -> int:
  return sum(x.size for x in jax.tree.leaves(params))


def _ms(times: list[float]) -> dict[str, float]:
  return {"median": round(1e3 * statistics.median(times), 2),
          "min": round(1e3 * min(times), 2), "max": round(1e3 * max(times), 2)}


def bench_jax(config, batch: int) -> dict:
  """Measures one batch size; returns the JSON record."""
  config = config.copy_and_resolve_references()
  config.batch_size = batch
  hp = train_step.StepConfig.from_config(config)
  k = input_pipeline.batches_per_step(config)
  key = jax.random.key(0)
  state = jax.jit(functools.partial(train_step.create_train_state, config))(key)
  params = {"g_params": _count(state.gen_params), "d_params": _count(state.critic_params)}
  if FLAGS.compare_torch and params != REFERENCE_PARAMS:
    raise UserError(f"--compare_torch needs the reference's model {REFERENCE_PARAMS}; "
                    f"this config builds {params}: use --config=configs/cifar10.py")
  s = config.image_size
  images = jnp.asarray(np.random.default_rng(0).integers(0, 256, (k, batch, s, s, 3), np.uint8))

  critic, critic_compile = _compile(functools.partial(train_step.critic_step, hp=hp),
                                    state, images[0], key)
  gen, gen_compile = _compile(functools.partial(train_step.generator_step, hp=hp),
                              state, images[0], key)
  # The iteration the trainer runs: with the NaN guard of config.on_nonfinite. Compiled
  # twice: cold, then from the persistent compilation cache (what a rerun or resume pays).
  guarded = functools.partial(nonfinite.guarded_iteration, hp=hp,
                              skip=config.on_nonfinite == "skip")
  iteration, iter_compile = _compile(guarded, state, images, key)
  jax.clear_caches()  # Else the in-memory cache answers, as it would not in a new process.
  _, iter_compile_warm = _compile(guarded, state, images, key)
  holder = {"state": state}

  def run(step_fn, x):
    holder["state"], metrics, *_ = step_fn(holder["state"], x, key)
    jax.block_until_ready(metrics)

  for _ in range(3):
    run(iteration, images)
  critic_t = _timed(lambda: run(critic, images[0]), FLAGS.min_time / 3)
  gen_t = _timed(lambda: run(gen, images[0]), FLAGS.min_time / 3)
  iter_t = _timed(lambda: run(iteration, images), FLAGS.min_time / 3)
  record = {
      "framework": "jax", "version": jax.__version__, "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind), "batch": batch, "n_critic": config.n_critic,
      **params,
      "conv_impl": config.model.conv_impl, "on_nonfinite": config.on_nonfinite,
      "compile_s": round(iter_compile, 2), "compile_cached_s": round(iter_compile_warm, 3),
      "critic_compile_s": round(critic_compile, 2),
      "gen_compile_s": round(gen_compile, 2),
      "critic_step_ms": _ms(critic_t), "gen_step_ms": _ms(gen_t), "iter": _ms(iter_t),
      "iter_ms": round(1e3 * statistics.median(iter_t), 2),
      "imgs_per_s": round(batch * k / statistics.median(iter_t), 1),
      "n_timed_iters": len(iter_t),
  }
  cost = iteration.cost_analysis()
  if isinstance(cost, list):
    cost = cost[0]
  if cost and "flops" in cost:
    record["gflops_per_iter"] = float(f"{cost['flops'] / 1e9:.4g}")
    if FLAGS.peak_tflops > 0:  # XLA's count: the convolutions' FLOPs plus elementwise work.
      achieved = cost["flops"] / statistics.median(iter_t)
      record["flop_utilisation"] = round(achieved / (FLAGS.peak_tflops * 1e12), 4)
  memory = jax.devices()[0].memory_stats()
  if memory and "peak_bytes_in_use" in memory:
    record["peak_mem_mib"] = round(memory["peak_bytes_in_use"] / 2**20, 1)
  if FLAGS.pipeline:
    batches = input_pipeline.train_batches(config, start_step=0, num_steps=10**6)
    pipe_t = _timed(lambda: run(iteration, jnp.asarray(next(batches))), FLAGS.min_time / 3)
    record["iter_ms_with_pipeline"] = round(1e3 * statistics.median(pipe_t), 2)
    record["pipeline_share"] = round(1 - statistics.median(iter_t) / statistics.median(pipe_t),
                                     3)
  return record


def bench_torch(batch: int) -> dict | None:
  """Runs the PyTorch reference for one batch size; None if torch or the file is missing."""
  if not os.path.exists(TORCH_REFERENCE):
    print(f"# no torch reference at {TORCH_REFERENCE}", file=sys.stderr)
    return None
  proc = subprocess.run([sys.executable, TORCH_REFERENCE, "--batch", str(batch),
                         "--min-time", str(FLAGS.min_time)], capture_output=True, text=True)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode or not lines:
    print(f"# torch reference failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return None
  return json.loads(lines[-1][len("RESULT "):])


def main(argv):
  del argv
  config = FLAGS.config
  # A fresh persistent cache, so that compile_s is a cold compile and compile_cached_s a hit.
  jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jax_cache_"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  if FLAGS.compare_torch:  # The reference's optimizer, so both sides do the same work.
    config.optimizer.generator_lr = config.optimizer.critic_lr = 1e-4
    config.optimizer.b1, config.optimizer.b2 = 0.5, 0.9
  rows = []
  for batch in (int(b) for b in FLAGS.batch):
    rows.append(bench_jax(config, batch))
    print(json.dumps(rows[-1]), flush=True)
    if FLAGS.compare_torch and (torch := bench_torch(batch)):
      rows.append(torch)
      print(json.dumps(torch), flush=True)
  print(f"\n{'framework':10} {'batch':>5} {'iter ms':>9} {'imgs/s':>8} {'compile s':>9} "
        f"{'cached s':>9}")
  for r in rows:
    print(f"{r['framework']:10} {r['batch']:5d} {r['iter_ms']:9.1f} {r['imgs_per_s']:8.1f} "
          f"{r.get('compile_s', r.get('first_iter_s', float('nan'))):9.2f} "
          f"{r.get('compile_cached_s', float('nan')):9.2f}")
  by_batch = {}
  for r in rows:
    by_batch.setdefault(r["batch"], {})[r["framework"]] = r["imgs_per_s"]
  for batch, frameworks in by_batch.items():
    if {"jax", "torch"} <= set(frameworks):
      print(f"batch {batch}: jax/torch images/s = {frameworks['jax'] / frameworks['torch']:.2f}")


def _main(argv):
  try:
    main(argv)
  except UserError as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(_main)
