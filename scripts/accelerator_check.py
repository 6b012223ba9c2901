r"""One command that measures an accelerator, offline: step speed, FLOP utilisation, a real run.

    python scripts/accelerator_check.py --data_dir=cifar10_subset/tfds

(docs/performance.md says how to set up a bare GPU host for it: the repository, the wheels of
scripts/wheelhouse.txt and a prepared tfds directory, no network.) In one go it measures

1. the trainer's compiled call (`train_calls`, the training split on the device) on the seed
   model at batch 16 for each K of --steps_per_call, in float32, then at the best K in
   bfloat16 and at --large_batch in both dtypes: ms per iteration, images/s, compile time,
   peak device memory, and the FLOP utilisation: the model's FLOPs per iteration over the
   time, against the device's dense peak for the dtype (`PEAK_TFLOPS` by device kind, or
   --peak_tflops);
2. a real `python -m colorize.main --config=configs/cifar10.py:seed,subset` run of --train_steps
   steps of the seed recipe (batch 16, data on the device, K per backend, evaluation and
   checkpoints at the full recipe's cadence), its steps/s after the first call, and the wall
   time that projects for the full seed recipe, 312,500 iterations.

It prints one JSON summary and a table, and writes both to --out (.json and .txt). On a
machine with the subset at hand and an H100/H200-class GPU, the defaults aim at about five
minutes, most of it compiling. `--tiny` runs the tiny test model on generated data for a few
steps: a smoke test of the command itself, on CPU.
"""
import functools
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

_MISSING = []
for _module in ("jax", "flax", "optax", "orbax.checkpoint", "ml_collections", "grain",
                "tensorflow_datasets", "tensorboardX", "PIL", "matplotlib"):
  try:
    __import__(_module)
  except ImportError:
    _MISSING.append(_module)
if _MISSING:  # Before anything else fails on them, with the fix.
  raise SystemExit(f"error: cannot import {', '.join(_MISSING)}; install the wheels: pip install "
                   "--no-index --no-deps --find-links wheelhouse -r scripts/wheelhouse.txt "
                   "(docs/performance.md)")

# pylint: disable=g-import-not-at-top,wrong-import-position
import argparse
import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import numpy as np

from colorize import device_data
from colorize import train_calls
from colorize import train_step
from configs import cifar10
from configs import test as test_config

SEED_RECIPE_STEPS = 312_500  # configs/cifar10.py: 100 epochs of 3,125 steps at batch 16.
# Dense peak TFLOP/s by device kind (substring of jax.Device.device_kind), from the vendors'
# data sheets, without sparsity. float32 is JAX's default precision, which runs float32
# convolutions on TF32 tensor cores on these GPUs and on bfloat16 passes on TPUs.
PEAK_TFLOPS = {
    "H200": {"float32": 494.7, "bfloat16": 989.4},
    "H100 PCIe": {"float32": 378.0, "bfloat16": 756.0},
    "H100": {"float32": 494.7, "bfloat16": 989.4},  # SXM.
    "A100": {"float32": 156.0, "bfloat16": 312.0},
    "L4": {"float32": 60.0, "bfloat16": 121.0},
    "TPU v4": {"float32": 275.0, "bfloat16": 275.0},
    "TPU v5 lite": {"float32": 197.0, "bfloat16": 197.0},
    "TPU v5": {"float32": 459.0, "bfloat16": 459.0},
    "TPU v6 lite": {"float32": 918.0, "bfloat16": 918.0},
}


def _parse_args(argv):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data",
                                                     "cifar10_subset", "tfds"),
                 help="The prepared tfds directory of the CIFAR-10 subset (or full CIFAR-10).")
  p.add_argument("--steps_per_call", default="1,10,100",
                 help="K values to measure at batch 16 (comma-separated).")
  p.add_argument("--large_batch", type=int, default=256)
  p.add_argument("--train_steps", type=int, default=5000,
                 help="Length of the real training run.")
  p.add_argument("--min_time", type=float, default=3.0, help="Seconds each timing runs.")
  p.add_argument("--peak_tflops", type=float, default=0.0,
                 help="The device's dense peak TFLOP/s for both dtypes, if not in the table.")
  p.add_argument("--out", default="accelerator_check", help="Writes OUT.json and OUT.txt.")
  p.add_argument("--tiny", action="store_true",
                 help="The tiny test model on generated data, a few steps (a smoke test).")
  return p.parse_args(argv)


def _peak(kind: str, dtype: str, override: float) -> tuple[float | None, str]:
  if override > 0:
    return override, "--peak_tflops"
  for name, peaks in PEAK_TFLOPS.items():
    if name in kind:
      return peaks[dtype], f"table ({name})"
  return None, "unknown device kind: pass --peak_tflops"


def _model_flops(config) -> float:
  """FLOPs of one training iteration: the model's convolutions, as XLA counts them unoptimised."""
  state = jax.eval_shape(functools.partial(train_step.create_train_state, config),
                         jax.random.key(0))
  s = config.image_size
  images = jax.ShapeDtypeStruct((1, config.batch_size, s, s, 3), np.uint8)
  hp = train_step.StepConfig.from_config(config)
  lowered = jax.jit(functools.partial(train_step.train_iteration, hp=hp)).lower(
      state, images, jax.random.key(0))
  cost = lowered.cost_analysis()
  cost = cost[0] if isinstance(cost, list) else cost
  return float(cost["flops"])


def measure(config, batch: int, k: int, dtype: str, args) -> dict:
  """Times the trainer's call of `k` iterations on device data; returns one record."""
  config = config.copy_and_resolve_references()
  config.batch_size = batch
  if dtype != "float32":
    config.compute_dtype = dtype
  hp = train_step.StepConfig.from_config(config)
  mesh = Mesh(np.asarray(jax.devices()), ("data",))
  replicated = NamedSharding(mesh, P())
  rng = np.random.default_rng(0)
  s = config.image_size
  split = device_data.put(rng.integers(0, 256, (4096, s, s, 3), np.uint8), mesh, shard=False)
  plans = np.zeros((k, 1, batch, 4), np.int32)
  plans[..., 0] = rng.integers(0, 4096, plans.shape[:-1])
  plans[..., 3] = rng.integers(0, 2, plans.shape[:-1])
  plans = jax.device_put(plans, replicated)
  key = jax.device_put(jax.random.key(0), replicated)
  state = jax.jit(functools.partial(train_step.create_train_state, config),
                  out_shardings=replicated)(key)
  call = train_calls.jit_train_call(hp, config.on_nonfinite, mesh=mesh, sharded=False,
                                    image_size=s)
  t0 = time.perf_counter()
  compiled = call.lower(state, plans, key, split).compile()
  compile_s = time.perf_counter() - t0
  holder = {"state": state}

  def run():
    holder["state"], metrics, _ = compiled(holder["state"], plans, key, split)
    jax.block_until_ready(metrics)

  for _ in range(2):
    run()
  times, start = [], time.perf_counter()
  while len(times) < 3 or time.perf_counter() - start < args.min_time:
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
  iter_s = statistics.median(times) / k
  flops = _model_flops(config)
  peak, peak_source = _peak(jax.devices()[0].device_kind, dtype, args.peak_tflops)
  record = {"batch": batch, "steps_per_call": k, "dtype": dtype,
            "iter_ms": round(1e3 * iter_s, 3), "imgs_per_s": round(batch / iter_s, 1),
            "compile_s": round(compile_s, 1), "gflops_per_iter": float(f"{flops / 1e9:.4g}"),
            "tflops": float(f"{flops / iter_s / 1e12:.4g}"), "peak_tflops": peak,
            "peak_source": peak_source}
  if peak:
    record["flop_utilisation"] = float(f"{flops / iter_s / (peak * 1e12):.4g}")
  memory = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in memory:
    record["peak_mem_mib"] = round(memory["peak_bytes_in_use"] / 2**20, 1)
  del holder, compiled, split
  return record


def training_run(args) -> dict:
  """A real `python -m colorize.main` run; its steps/s and the projected seed-recipe time."""
  workdir = tempfile.mkdtemp(prefix="accelerator_check_run_")
  if args.tiny:
    flags = ["--config=configs/test.py", f"--config.num_train_steps={args.train_steps}",
             "--config.eval_every_steps=1000", "--config.checkpoint_every_steps=1000"]
  else:  # The seed recipe on the subset, at the full recipe's eval and checkpoint cadence.
    flags = ["--config=configs/cifar10.py:seed,subset", f"--config.data_dir={args.data_dir}",
             f"--config.num_train_steps={args.train_steps}",
             "--config.eval_every_steps=3125", "--config.checkpoint_every_steps=3125"]
  flags += [f"--workdir={workdir}", "--config.data_on_device=True",
            "--config.compilation_cache_dir="]
  t0 = time.perf_counter()
  proc = subprocess.run([sys.executable, "-m", "colorize.main", *flags], cwd=REPO,
                        capture_output=True, text=True)
  wall = time.perf_counter() - t0
  if proc.returncode:
    return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed",
            "command": " ".join(["python -m colorize.main", *flags])}
  progress = re.findall(r"step (\d+)/\d+  ([\d.]+) steps/s", proc.stderr)
  steps_per_call = re.search(r"(\d+) steps per call", proc.stderr)
  evals = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))
           if "eval_psnr" in line]
  rate = float(progress[-1][1]) if progress else 0.0
  record = {"command": " ".join(["python -m colorize.main", *flags]),
            "steps": args.train_steps, "wall_s": round(wall, 1), "steps_per_sec": rate,
            "steps_per_call": int(steps_per_call.group(1)) if steps_per_call else None,
            "eval_psnr": evals[-1].get("eval_psnr") if evals else None}
  if rate:
    start_up = max(0.0, wall - args.train_steps / rate)
    record.update(ms_per_iter=round(1e3 / rate, 3), start_up_s=round(start_up, 1),
                  seed_recipe_projected_min=round((start_up + SEED_RECIPE_STEPS / rate) / 60, 1))
  return record


def _table(summary: dict) -> str:
  lines = [f"{summary['device']} x{summary['num_devices']} ({summary['backend']}), "
           f"jax {summary['jax']}",
           f"{'batch':>5} {'K':>4} {'dtype':>8} {'ms/iter':>8} {'imgs/s':>9} {'TFLOP/s':>8} "
           f"{'util':>6} {'compile s':>9} {'mem MiB':>8}"]
  for r in summary["benchmarks"]:
    util = f"{100 * r['flop_utilisation']:.1f}%" if "flop_utilisation" in r else "-"
    lines.append(f"{r['batch']:5d} {r['steps_per_call']:4d} {r['dtype']:>8} {r['iter_ms']:8.3f} "
                 f"{r['imgs_per_s']:9.1f} {r['tflops']:8.3f} {util:>6} {r['compile_s']:9.1f} "
                 f"{r.get('peak_mem_mib', float('nan')):8.1f}")
  run = summary["training_run"]
  if "error" in run:
    lines.append(f"training run failed: {run['error']}")
  else:
    lines.append(f"training run: {run['steps']} steps in {run['wall_s']} s, "
                 f"{run['steps_per_sec']} steps/s after the first call "
                 f"({run.get('ms_per_iter', '-')} ms/iter, K={run['steps_per_call']}), "
                 f"eval_psnr {run['eval_psnr']}")
    if "seed_recipe_projected_min" in run:
      lines.append(f"seed recipe ({SEED_RECIPE_STEPS:,} iterations) projected: "
                   f"{run['seed_recipe_projected_min']} min, start-up {run['start_up_s']} s")
  lines.append(f"total wall time: {summary['wall_s']} s")
  return "\n".join(lines)


def main(argv=None) -> dict:
  args = _parse_args(argv)
  start = time.perf_counter()
  if args.tiny:
    config, batch, large, ks = test_config.get_config(), 8, 16, [1, 2]
    args.train_steps, args.min_time = min(args.train_steps, 8), min(args.min_time, 0.2)
  else:
    config, batch, large = cifar10.get_config("seed"), 16, args.large_batch
    ks = [int(k) for k in args.steps_per_call.split(",")]
    # Before the benchmarks' minutes: the run at the end needs CIFAR-10 prepared there.
    if not glob.glob(os.path.join(glob.escape(args.data_dir), "cifar10", "*",
                                  "dataset_info.json")):
      raise SystemExit(f"error: --data_dir={args.data_dir} holds no prepared cifar10 (no "
                       "cifar10/<version>/dataset_info.json): give the tfds directory where it "
                       "was prepared")
  dtypes = ["float32"] + (["bfloat16"] if "compute_dtype" in config else [])
  benchmarks = [measure(config, batch, k, "float32", args) for k in ks]
  best = min(benchmarks, key=lambda r: r["iter_ms"])["steps_per_call"]
  benchmarks += [measure(config, batch, best, d, args) for d in dtypes[1:]]
  benchmarks += [measure(config, large, best, d, args) for d in dtypes]
  device = jax.devices()[0]
  summary = {"device": device.device_kind, "backend": jax.default_backend(),
             "num_devices": jax.device_count(), "jax": jax.__version__,
             "benchmarks": benchmarks, "best_steps_per_call": best,
             "bfloat16": "compute_dtype" in config, "training_run": training_run(args)}
  summary["wall_s"] = round(time.perf_counter() - start, 1)
  table = _table(summary)
  print(json.dumps(summary))
  print(table)
  with open(f"{args.out}.json", "w") as f:
    json.dump(summary, f, indent=2)
  with open(f"{args.out}.txt", "w") as f:
    f.write(table + "\n")
  return summary


if __name__ == "__main__":
  main()
