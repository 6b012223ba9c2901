r"""Where the training iteration's time goes: each operation of the trainer's compiled call.

    python scripts/profile_step.py --config=configs/cifar10.py:seed --batch=64
    python scripts/profile_step.py --config=configs/cifar10.py:seed --batch=16 --top=40

Compiles the trainer's call (`steps_per_call` iterations on synthetic batches, with the
PyTorch reference's optimizer, as scripts/benchmark.py times it), warms it up and traces
`--calls` calls with `jax.profiler`. For each operation of the compiled program (on XLA:CPU a
fusion, or a matmul library's fusion such as `ynn_fusion`) it prints the time it took per
iteration, its share of all operations' time, the FLOPs of the matrix multiplies it holds
(2 M N K per dot of the optimised HLO, so padded taps count) per iteration, their rate, and
the layer it comes from (its HLO metadata; `transpose(jvp(...))` is a backward pass;
convolutions left to XLA, `model.conv_impl=xla`, count no FLOPs here). Then
the matmuls' totals for the critic and the generator. Operations on threads run side by
side, so the shares are of the operations' summed time, not of the wall clock, and an
operation's time is not its cost when another runs beside it. Products that XLA:CPU runs
with Eigen (those its matmul library does not take) run off the traced threads: their events
are only the dispatch, a fraction of a millisecond, whatever their size.

This is a diagnostic: to compare two versions of the code, time them with
scripts/compare_revisions.py, which interleaves them on a shared machine.
"""
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

from absl import app
from absl import flags
import jax
from ml_collections import config_flags
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from colorize import train_calls  # pylint: disable=g-import-not-at-top
from colorize import train_step
import timed_call

config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=False)
flags.DEFINE_integer("batch", 64, "Global batch size.", lower_bound=1)
flags.DEFINE_integer("calls", 2, "Traced calls of steps_per_call iterations each.",
                     lower_bound=1)
flags.DEFINE_integer("top", 30, "Operations to list, the slowest first.")
flags.mark_flag_as_required("config")
FLAGS = flags.FLAGS

_COMPUTATION = re.compile(r"^(?:ENTRY )?%(\S+) \((.*?)\) -> .*? \{\n(.*?)\n\}", re.S | re.M)
# `%name = shape opcode(operands), attributes`; a tuple shape is in parentheses.
_INSTRUCTION = re.compile(r"^\s*(?:ROOT )?%(\S+) = (\(.*?\)|\S+) ([\w-]+)\((.*?)\)(.*)$", re.M)
_SOURCE = re.compile(r'op_name="(?:jit\([^)]*\)/)?(?:while/body/)?(?:closed_call/)?([^"]*)"')
# Operations that run others (whose events would count those twice).
_CONTROL = ("while", "call", "conditional", "async-start", "async-done")


def _dims(shape: str) -> list[int]:
  return [int(d) for d in re.search(r"\[([\d,]*)\]", shape).group(1).split(",") if d]


def dot_flops(hlo: str) -> tuple[dict[str, int], dict[str, str]]:
  """FLOPs of the matrix multiplies of each operation of an optimised HLO module's text.

  The operations are the instructions that run on their own (not those inside a fusion),
  without control flow, whose events would hold others' time.

  Args:
    hlo: `compiled.as_text()`.

  Returns:
    ({operation: 2 M N K summed over the dots it is, or its fused computation holds},
     {operation: the op_name of its metadata without the jit and loop prefixes, or ""}).
  """
  computations = [(name, params, _INSTRUCTION.findall(body))
                  for name, params, body in _COMPUTATION.findall(hlo)]
  calls = {inst: re.search(r"calls=%([\w.-]+)", rest).group(1)  # fusion -> its computation
           for _, _, instructions in computations
           for inst, _, opcode, _, rest in instructions if opcode == "fusion"}
  fused = set(calls.values())
  shapes, own, sources = {}, {}, {}
  for name, params, instructions in computations:
    shapes.update(re.findall(r"(\S+?): (\w+\[[\d,]*\])", params))
    own[name] = 0  # The computation's dots, for the fusions that call it.
    for inst, shape, opcode, operands, rest in instructions:
      shapes[inst] = shape
      if opcode == "dot":
        lhs = operands.split(",")[0].split()[-1].lstrip("%")
        contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", rest).group(1)
        k = np.prod([_dims(shapes[lhs])[int(d)] for d in contracting.split(",")])
        own[inst] = 2 * int(np.prod(_dims(shape))) * int(k)
        own[name] += own[inst]
      if name not in fused and opcode not in _CONTROL:
        source = _SOURCE.search(rest)
        sources[inst] = source.group(1) if source else ""
  flops = {inst: own.get(inst, 0) or own.get(calls.get(inst, ""), 0) for inst in sources}
  return flops, sources


def _op_times(trace_dir: str, names: set[str]) -> tuple[dict[str, float], dict[str, int]]:
  """Summed microseconds and counts of the traced events named after HLO instructions."""
  paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
  if not paths:
    raise SystemExit(f"error: jax.profiler wrote no trace under {trace_dir}")
  with gzip.open(paths[0]) as f:
    events = json.load(f)
  micros, counts = collections.Counter(), collections.Counter()
  for e in events["traceEvents"] if isinstance(events, dict) else events:
    if e.get("ph") == "X" and e.get("name") in names:
      micros[e["name"]] += e["dur"]
      counts[e["name"]] += 1
  return micros, counts


def main(argv):
  del argv
  config = FLAGS.config
  config.batch_size = FLAGS.batch
  timed_call.use_reference_optimizer(config)  # As scripts/benchmark.py times it.
  hp = train_step.StepConfig.from_config(config)
  steps = train_calls.steps_per_call(config)
  state, xs, key = timed_call.call_inputs(config, FLAGS.batch, steps)
  call = train_calls.jit_train_call(hp, config.on_nonfinite)
  flops, sources = dot_flops(call.lower(state, xs, key).compile().as_text())
  for _ in range(2):
    state, metrics, _ = call(state, xs, key)
  jax.block_until_ready(metrics)
  trace_dir = tempfile.mkdtemp(prefix="profile_step_")
  start = time.perf_counter()
  with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    for _ in range(FLAGS.calls):
      state, metrics, _ = call(state, xs, key)
    jax.block_until_ready(metrics)
  wall_ms = 1e3 * (time.perf_counter() - start) / (FLAGS.calls * steps)
  micros, counts = _op_times(trace_dir, set(sources))
  iterations = FLAGS.calls * steps
  total_ms = sum(micros.values()) / 1e3 / iterations

  def row(ms, gflop):
    return f"{ms:8.2f} {ms / total_ms:6.1%} {gflop:8.4g} {gflop / ms * 1e3 if ms else 0:8.1f}"

  print(f"batch {FLAGS.batch}, {steps} iterations per call, {jax.devices()[0].device_kind}: "
        f"{wall_ms:.1f} ms per iteration while traced, {total_ms:.1f} ms of operations")
  print(f"{'ms/iter':>8} {'share':>6} {'GFLOP':>8} {'GFLOP/s':>8}  operation  layer")
  per_op = {n: (micros[n] / 1e3 / iterations, flops[n] * counts[n] / iterations / 1e9)
            for n in micros}
  for name, (ms, gflop) in sorted(per_op.items(), key=lambda kv: -kv[1][0])[:FLAGS.top]:
    print(f"{row(ms, gflop)}  {name}  {sources[name]}")
  print("matmuls:")
  for model in ("PatchCritic", "UNetGenerator"):
    mine = [v for n, v in per_op.items() if v[1] and model in sources[n]]
    print(f"{row(sum(v[0] for v in mine), sum(v[1] for v in mine))}  {model}")


if __name__ == "__main__":
  app.run(main)
