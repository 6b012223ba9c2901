r"""Training-step benchmark: compile time, step times, images/s, FLOP/s, PyTorch comparison.

    python scripts/benchmark.py --config=configs/cifar10.py:seed,subset --compare_torch

(`:subset` reads the offline CIFAR-10 subset for the pipeline measurement; `--nopipeline`
skips that measurement for configs whose data is not at hand.)

First the device's matmul peak is measured: the best of several [n, n] @ [n, n] `jnp.dot`s
(`--peak_n`), per dtype. Then for each batch size and compute dtype (`--dtypes`, the
config's `compute_dtype`), after warm-up: the critic step and the generator step alone
(median, min, max over `--min_time` / 3 seconds each), then `--rounds` rounds of the full
iteration (`n_critic` critic steps + 1 generator step, with the config's NaN guard) as the
trainer runs it, in compiled calls of `steps_per_call` iterations (`--config.steps_per_call`;
0, the default, is the trainer's choice for the config and backend), each
round `--min_time` / 3 seconds, then the iteration fed by the real input pipeline, and the
share of time that pipeline adds. Iteration times are a call's time over its iterations.
Everything runs on on-device synthetic batches.

With `--compare_torch`, every JAX round is followed by a run of the PyTorch reference
(`../shared/bench/torch_reference.py --shared-forward`: PyTorch eager, the same layers and
parameter counts, G 16,655,554 and D 663,745, one generator forward per iteration as in
pix2pix; bf16 is its autocast) for the same batch size and dtype, so both see the same load.
The JAX side then uses the reference's optimizer, Adam(1e-4, 0.5, 0.9). Each round gives a
ratio of images/s, so the noise of a shared machine shows; the headline is their median.
torch is not a dependency of the package (`pip install torch`).

One JSON line per measurement (`framework`, `batch`, `dtype`, `iter_ms`, `imgs_per_s`, ...)
and the peak, then a table. FLOPs: `model_gflops_per_iter` counts the convolutions' real
multiply-adds (colorize/flops.py), `achieved_gflops` divides it by the iteration's median and
`flop_utilisation` by the measured float32 matmul peak; `xla_gflops_per_iter` is XLA's
count (padded taps and elementwise work included), `xla_gbytes_per_iter` its count of the
bytes that the iteration's operations read and write. `compile_s` is a cold compile in a fresh
persistent cache, `compile_cached_s` the same program from that cache (what a rerun or a
resumed run pays). `load` is the 1-minute load average at each round. `cpu_ms_per_iter`
(user and system time of all the process's threads) and `minor_faults_per_iter` (pages
the kernel mapped in: memory allocated afresh and touched) are averaged over the timed
rounds' iterations. `peak_mem_mib` is reported where the backend tracks memory (GPU/TPU;
not XLA:CPU).
"""
import functools
import json
import os
import resource
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

from colorize import flops  # pylint: disable=g-import-not-at-top
from colorize import input_pipeline
from colorize import models
from colorize import train_calls
from colorize import train_step
from colorize.errors import UserError
import timed_call

TORCH_REFERENCE = os.path.join(os.path.dirname(REPO), "shared", "bench", "torch_reference.py")
REFERENCE_PARAMS = {"g_params": 16_655_554, "d_params": 663_745}  # Its G and D at 32x32.

config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=False)
flags.DEFINE_list("batch", ["16", "64"], "Global batch sizes to measure.")
flags.DEFINE_list("dtypes", list(models.COMPUTE_DTYPES), "Compute dtypes to measure.")
flags.DEFINE_float("min_time", 6.0, "Seconds of each step's timing; a round is a third.",
                   lower_bound=0)
flags.DEFINE_integer("rounds", 3, "Timed rounds of the iteration (each followed by torch's).",
                     lower_bound=1)
flags.DEFINE_bool("compare_torch", False, "Also run the PyTorch reference, interleaved.")
flags.DEFINE_alias("compare-torch", "compare_torch")
flags.DEFINE_bool("pipeline", True, "Also time the iteration fed by the real input pipeline.")
flags.DEFINE_integer("peak_n", 4096, "Size of the square matmuls that measure the peak.",
                     lower_bound=1)
flags.DEFINE_float("peak_tflops", 0.0, "The device's nominal peak TFLOP/s for the dtype in use "
                   "(e.g. an H100 SXM's dense bf16 989); > 0 adds `nominal_flop_utilisation`.")
flags.mark_flag_as_required("config")
flags.register_validator("batch", lambda sizes: all(b.isdigit() and int(b) > 0 for b in sizes),
                         "give positive batch sizes, e.g. --batch=16,64")
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


def matmul_peak_gflops(dtype: str, n: int, repeats: int = 5) -> float:
  """GFLOP/s of the best of `repeats` [n, n] @ [n, n] products in `dtype` (after warm-up)."""
  a, b = (jax.random.normal(jax.random.key(i), (n, n), dtype) for i in range(2))
  matmul = jax.jit(jnp.dot)
  jax.block_until_ready(matmul(a, b))
  best = min(_timed(lambda: jax.block_until_ready(matmul(a, b)), 0.0, repeats))
  return 2 * n**3 / best / 1e9


def _flop_fields(model_flops: float, seconds: float, peak_gflops: float) -> dict:
  achieved = model_flops / seconds / 1e9
  return {"achieved_gflops": float(f"{achieved:.4g}"),
          "flop_utilisation": float(f"{achieved / peak_gflops:.3g}")}


def bench_jax(config, batch: int, dtype: str):
  """Compiles and measures everything but the iteration's rounds for one batch and dtype.

  Returns:
    (the JSON record so far, a function that times one round of the iteration, the
    iteration's model FLOPs).
  """
  config = config.copy_and_resolve_references()
  config.batch_size = batch
  config.compute_dtype = dtype
  hp = train_step.StepConfig.from_config(config)
  steps = train_calls.steps_per_call(config)
  state, xs, key = timed_call.call_inputs(config, batch, steps)
  images = xs[0]  # One iteration's batches, for the steps alone.
  params = {"g_params": _count(state.gen_params), "d_params": _count(state.critic_params)}

  model_flops = flops.iteration_flops(config)
  critic, critic_compile = _compile(functools.partial(train_step.critic_step, hp=hp),
                                    state, images[0], key)
  gen, gen_compile = _compile(functools.partial(train_step.generator_step, hp=hp),
                              state, images[0], key)
  # The iterations the trainer runs: calls of `steps` guarded iterations (the NaN guard of
  # config.on_nonfinite). Compiled twice: cold, then from the persistent compilation cache
  # (what a rerun or resume pays).
  call_fn = functools.partial(train_calls.train_call, hp=hp,
                              skip=config.on_nonfinite == "skip")
  call, iter_compile = _compile(call_fn, state, xs, key)
  jax.clear_caches()  # Else the in-memory cache answers, as it would not in a new process.
  _, iter_compile_warm = _compile(call_fn, state, xs, key)
  holder = {"state": state}

  def run(step_fn, x):
    holder["state"], metrics, *_ = step_fn(holder["state"], x, key)
    jax.block_until_ready(metrics)

  def per_iteration(make_xs) -> list[float]:
    """Seconds per iteration of calls on make_xs()'s batches, over --min_time / 3."""
    return [t / steps for t in _timed(lambda: run(call, make_xs()), FLAGS.min_time / 3)]

  for _ in range(3):
    run(call, xs)
  critic_t = _timed(lambda: run(critic, images[0]), FLAGS.min_time / 3)
  gen_t = _timed(lambda: run(gen, images[0]), FLAGS.min_time / 3)
  record = {
      "framework": "jax", "version": jax.__version__, "backend": jax.default_backend(),
      "device": str(jax.devices()[0].device_kind), "dtype": dtype, "batch": batch,
      "n_critic": config.n_critic, **params,
      "conv_impl": config.model.conv_impl, "on_nonfinite": config.on_nonfinite,
      "steps_per_call": steps, "compile_s": round(iter_compile, 2),
      "compile_cached_s": round(iter_compile_warm, 3),
      "critic_compile_s": round(critic_compile, 2),
      "gen_compile_s": round(gen_compile, 2),
      "critic_step_ms": _ms(critic_t), "gen_step_ms": _ms(gen_t),
      "model_gflops_per_iter": float(f"{model_flops / 1e9:.4g}"),
  }
  # XLA counts a loop's body once, whatever its trip count: the call's count is one iteration's.
  cost = call.cost_analysis()
  if isinstance(cost, list):
    cost = cost[0]
  if cost and "flops" in cost:
    record["xla_gflops_per_iter"] = float(f"{cost['flops'] / 1e9:.4g}")
  if cost and "bytes accessed" in cost:
    record["xla_gbytes_per_iter"] = float(f"{cost['bytes accessed'] / 1e9:.4g}")
  memory = jax.devices()[0].memory_stats()
  if memory and "peak_bytes_in_use" in memory:
    record["peak_mem_mib"] = round(memory["peak_bytes_in_use"] / 2**20, 1)
  if FLAGS.pipeline:
    batches = input_pipeline.train_batches(config, start_step=0, num_steps=10**6)
    pipe_t = per_iteration(lambda: jnp.asarray(np.stack([next(batches) for _ in range(steps)])))
    record["iter_ms_with_pipeline"] = round(1e3 * statistics.median(pipe_t), 2)
  return record, lambda: per_iteration(lambda: xs), model_flops


def check_reference_model(config) -> None:
  """Raises UserError unless `config` builds the PyTorch reference's models (--compare_torch)."""
  state = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                         jax.random.key(0))
  params = {"g_params": _count(state.gen_params), "d_params": _count(state.critic_params)}
  if params != REFERENCE_PARAMS:
    raise UserError(f"--compare_torch needs the reference's model {REFERENCE_PARAMS}; "
                    f"this config builds {params}: use --config=configs/cifar10.py")


def bench_torch(batch: int, dtype: str) -> dict | None:
  """One run of the PyTorch reference (pix2pix form); None if torch or the file is missing."""
  if not os.path.exists(TORCH_REFERENCE):
    print(f"# no torch reference at {TORCH_REFERENCE}", file=sys.stderr)
    return None
  proc = subprocess.run([sys.executable, TORCH_REFERENCE, "--shared-forward", "--batch",
                         str(batch), "--dtype", dtype, "--min-time", str(FLAGS.min_time)],
                        capture_output=True, text=True)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  if proc.returncode or not lines:
    print(f"# torch reference failed: {proc.stderr.strip()[-300:]}", file=sys.stderr)
    return None
  return json.loads(lines[-1][len("RESULT "):])


def measure(config, batch: int, dtype: str, peak_gflops: float) -> list[dict]:
  """The JAX record for (batch, dtype), and torch's when comparing: rounds interleaved."""
  record, time_round, model_flops = bench_jax(config, batch, dtype)
  jax_times, jax_rounds, torch_runs, loads = [], [], [], []
  user = system = faults = 0.0
  for _ in range(FLAGS.rounds):
    loads.append(round(os.getloadavg()[0], 2))
    before = resource.getrusage(resource.RUSAGE_SELF)
    times = time_round()
    after = resource.getrusage(resource.RUSAGE_SELF)
    user += after.ru_utime - before.ru_utime
    system += after.ru_stime - before.ru_stime
    faults += after.ru_minflt - before.ru_minflt
    jax_times += times
    jax_rounds.append(statistics.median(times))
    if FLAGS.compare_torch and (torch := bench_torch(batch, dtype)):
      torch_runs.append(torch)
  median = statistics.median(jax_times)
  iterations = len(jax_times) * record["steps_per_call"]  # jax_times: one per call.
  k = record["n_critic"]
  record.update({
      "iter": _ms(jax_times), "iter_ms": round(1e3 * median, 2),
      "imgs_per_s": round(batch * k / median, 1), "n_timed_iters": len(jax_times),
      "rounds_iter_ms": [round(1e3 * t, 2) for t in jax_rounds], "load": loads,
      "cpu_ms_per_iter": {"user": round(1e3 * user / iterations, 2),
                          "sys": round(1e3 * system / iterations, 2)},
      "minor_faults_per_iter": round(faults / iterations),
      **_flop_fields(model_flops, median, peak_gflops),
  })
  if "iter_ms_with_pipeline" in record:
    record["pipeline_share"] = round(1 - record["iter_ms"] / record["iter_ms_with_pipeline"], 3)
  if FLAGS.peak_tflops > 0:
    record["nominal_flop_utilisation"] = float(
        f"{model_flops / median / FLAGS.peak_tflops / 1e12:.3g}")
  if len(torch_runs) < FLAGS.rounds:
    return [record]
  torch_rounds = [t["iter_ms"] for t in torch_runs]
  ratios = [t / (1e3 * j) for t, j in zip(torch_rounds, jax_rounds)]
  record["vs_torch"] = {"ratio": round(statistics.median(ratios), 3),
                        "per_round": [round(r, 3) for r in ratios]}
  torch_median = statistics.median(torch_rounds) / 1e3
  first = torch_runs[0]
  torch = {key: first[key] for key in ("framework", "version", "dtype", "batch", "threads",
                                       "g_params", "d_params", "shared_forward")}
  torch.update({
      "first_iter_s": statistics.median(t["first_iter_s"] for t in torch_runs),
      "critic_step_ms": statistics.median(t["critic_step_ms"] for t in torch_runs),
      "gen_step_ms": statistics.median(t["gen_step_ms"] for t in torch_runs),
      "iter_ms": round(1e3 * torch_median, 2), "imgs_per_s": round(batch / torch_median, 1),
      "rounds_iter_ms": torch_rounds, "finite": all(t["finite"] for t in torch_runs),
      **_flop_fields(model_flops, torch_median, peak_gflops)})
  return [record, torch]


def main(argv):
  del argv
  config = FLAGS.config
  # A fresh persistent cache, so that compile_s is a cold compile and compile_cached_s a hit.
  jax.config.update("jax_compilation_cache_dir", tempfile.mkdtemp(prefix="jax_cache_"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
  for dtype in FLAGS.dtypes:
    if dtype not in models.COMPUTE_DTYPES:
      raise UserError(f"--dtypes={dtype!r}: expected some of {models.COMPUTE_DTYPES}")
  if FLAGS.compare_torch:
    check_reference_model(config)  # Before the peak's matmuls, which take a while.
    timed_call.use_reference_optimizer(config)  # So both sides do the same work.
  peaks = {d: round(matmul_peak_gflops(d, FLAGS.peak_n), 1)
           for d in dict.fromkeys(["float32", *FLAGS.dtypes])}
  print(json.dumps({"matmul_peak_gflops": peaks, "peak_n": FLAGS.peak_n,
                    "device": str(jax.devices()[0].device_kind)}), flush=True)
  rows = []
  for batch in (int(b) for b in FLAGS.batch):
    for dtype in FLAGS.dtypes:
      for record in measure(config, batch, dtype, peaks["float32"]):
        rows.append(record)
        print(json.dumps(record), flush=True)
  _print_table(rows, peaks)


def _print_table(rows: list[dict], peaks: dict[str, float]) -> None:
  print(f"\nmatmul peak GFLOP/s: " + ", ".join(f"{d} {p}" for d, p in peaks.items()))
  print(f"{'framework':10} {'dtype':8} {'batch':>5} {'iter ms':>9} {'imgs/s':>8} "
        f"{'GFLOP/s':>8} {'of peak':>7} {'compile s':>9} {'cached s':>9}")
  for r in rows:
    print(f"{r['framework']:10} {r['dtype']:8} {r['batch']:5d} {r['iter_ms']:9.1f} "
          f"{r['imgs_per_s']:8.1f} {r['achieved_gflops']:8.1f} {r['flop_utilisation']:7.1%} "
          f"{r.get('compile_s', r.get('first_iter_s', float('nan'))):9.2f} "
          f"{r.get('compile_cached_s', float('nan')):9.2f}")
  for r in rows:
    if "vs_torch" in r:
      rounds = " ".join(f"{x:.2f}" for x in r["vs_torch"]["per_round"])
      print(f"batch {r['batch']} {r['dtype']}: jax/torch images/s = {r['vs_torch']['ratio']:.2f}"
            f" (rounds: {rounds}; load {r['load']})")


def _main(argv):
  try:
    main(argv)
  except UserError as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(_main)
