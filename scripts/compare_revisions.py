r"""A/B timing of the training iteration at two git revisions, interleaved pair by pair.

    python scripts/compare_revisions.py --batch=64 --rounds=40 main HEAD

On a machine that others share, load changes from second to second, so two measurements taken
one after the other compare the load as much as the code. This runs each revision in its own
process (`git archive` of the revision; the revision's `--config_file`, configs/cifar10.py
unless given, with the PyTorch reference's optimizer), both compiled and warm, and times them
alternately, two compiled calls at a time, in rounds whose order alternates. A call runs the
trainer's default number of iterations (`config.steps_per_call`: 5 on CPU for the shipped
configs), as training and scripts/benchmark.py do: a change can speed up one iteration per call
and not a call of five (XLA fuses the loop's body differently).
`--config='{"steps_per_call": 1}'` times single iterations. Each round gives a ratio of the two
revisions' times per iteration (wall clock, and process CPU time, which counts less of other
processes' interference); the verdict is the median ratio over rounds and how many rounds
favour each side.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def worker(config_file: str, batch: int, overrides: dict) -> None:
  """Compiles the trainer's call of the code on sys.path; times 2 calls per line read."""
  import functools  # pylint: disable=g-import-not-at-top
  import importlib
  import jax
  from colorize import nonfinite
  from colorize import train_calls
  from colorize import train_step
  import timed_call  # This tree's, beside this file.
  path, _, variant = config_file.partition(":")
  module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
  config = module.get_config(variant)
  config.batch_size = batch
  timed_call.use_reference_optimizer(config)
  config.update_from_flattened_dict(overrides)
  steps = train_calls.steps_per_call(config)
  hp = train_step.StepConfig.from_config(config)
  state, images, key = timed_call.call_inputs(config, batch, steps)
  if steps == 1:  # One iteration, not wrapped in a scan.
    call = jax.jit(functools.partial(nonfinite.guarded_iteration, hp=hp, skip=False),
                   donate_argnums=train_step.donated_state())
    images = images[0]
  else:
    call = train_calls.jit_train_call(hp, "stop")
  holder = [state]

  def run():
    holder[0], metrics, _ = call(holder[0], images, key)
    jax.block_until_ready(metrics)

  for _ in range(3):
    run()
  print("READY", flush=True)
  for _ in sys.stdin:
    times = []
    for _ in range(2):
      wall, cpu = time.perf_counter(), time.process_time()
      run()
      times.append(((time.perf_counter() - wall) / steps, (time.process_time() - cpu) / steps))
    print(json.dumps(times), flush=True)


def _export(rev: str, into: str) -> str:
  """The files of `rev` (a commit, or "." for the working tree as it is) under `into`."""
  os.makedirs(into)
  if rev == ".":
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           check=True, capture_output=True).stdout
    subprocess.run(["tar", "-c", "--null", "-T", "-", "-f", os.path.join(into, "tree.tar")],
                   cwd=REPO, input=files, check=True)
    subprocess.run(["tar", "-xf", "tree.tar"], cwd=into, check=True)
  else:
    archive = subprocess.run(["git", "archive", rev], cwd=REPO, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x"], cwd=into, input=archive, check=True)
  return into


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("revisions", nargs="*", help='two git revisions ("." = working tree)')
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--rounds", type=int, default=40)
  parser.add_argument("--config_file", default="configs/cifar10.py",
                      help="each revision's config, relative to its root, [:variant]")
  parser.add_argument("--config", default="{}", help='JSON overrides, e.g. {"loss": "l1"}')
  parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.worker:
    return worker(args.config_file, args.batch, json.loads(args.config))
  if len(args.revisions) != 2:
    parser.error("give two revisions, e.g. main HEAD")
  if min(args.batch, args.rounds) < 1:
    parser.error(f"--batch={args.batch} --rounds={args.rounds}: give positive integers")

  for rev in args.revisions:
    if rev != "." and subprocess.run(["git", "rev-parse", "--verify", "--quiet", rev + "^{commit}"],
                                     cwd=REPO, capture_output=True).returncode:
      raise SystemExit(f"error: {rev!r} is not a commit of this repository (git rev-parse)")
  config_path = os.path.normpath(args.config_file.partition(":")[0])
  if os.path.isabs(config_path) or config_path.startswith(".."):
    raise SystemExit(f"error: --config_file={args.config_file}: give a path inside the "
                     "repository, which each revision's copy has (e.g. configs/cifar10.py)")
  with tempfile.TemporaryDirectory(prefix="compare_revisions_") as tmp:
    procs = []
    try:
      for i, rev in enumerate(args.revisions):
        tree = _export(rev, os.path.join(tmp, str(i)))
        if not os.path.isfile(os.path.join(tree, config_path)):
          raise SystemExit(f"error: --config_file={args.config_file}: {rev} has no "
                           f"{config_path}")
        # This file's worker, importing the revision's colorize and configs.
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", f"--batch={args.batch}",
             f"--config_file={args.config_file}", f"--config={args.config}"],
            cwd=tree, env={**os.environ, "PYTHONPATH": tree}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True))
      _compare(args.revisions, procs, args.rounds)
    finally:
      for proc in procs:  # Ends at once a worker still compiling when the other failed.
        proc.kill()
        proc.wait()


def _compare(revisions: list[str], procs: list[subprocess.Popen], rounds: int) -> None:
  """Times the two started workers in alternating rounds; prints each round and the verdict."""
  for rev, proc in zip(revisions, procs):
    if proc.stdout.readline().strip() != "READY":
      raise SystemExit(f"error: the worker for {rev} failed to start (its error is above)")
  ratios = {"wall": [], "cpu": []}
  for r in range(rounds):
    medians = [None, None]
    for i in ((0, 1) if r % 2 == 0 else (1, 0)):
      procs[i].stdin.write("\n")
      procs[i].stdin.flush()
      times = json.loads(procs[i].stdout.readline())
      medians[i] = [statistics.median(t[k] for t in times) for k in (0, 1)]
    for k, name in enumerate(("wall", "cpu")):
      ratios[name].append(medians[0][k] / medians[1][k])
    print(f"round {r:3d}  load {os.getloadavg()[0]:5.1f}  {revisions[0]} "
          f"{1e3 * medians[0][0]:8.1f} ms  {revisions[1]} {1e3 * medians[1][0]:8.1f} ms  "
          f"ratio {ratios['wall'][-1]:.3f} (cpu {ratios['cpu'][-1]:.3f})", flush=True)
  a, b = revisions
  for name, values in ratios.items():
    faster = sum(v > 1 for v in values)
    print(f"{name:4}: time({a}) / time({b}) median {statistics.median(values):.3f} over "
          f"{len(values)} rounds; {b} faster in {faster}, {a} faster in {len(values) - faster}")


if __name__ == "__main__":
  main()
