"""scripts/accelerator_check.py runs end to end (its --tiny mode, on CPU) and reports its parts.

A smoke test of the command, its summary and its files, not of speed: no timing is asserted.
"""
import json
import subprocess
import sys

from tests import process_helpers


def test_tiny_check_writes_the_summary_and_the_table(tmp_path):
  out = tmp_path / "check"
  proc = subprocess.run(
      [sys.executable, "scripts/accelerator_check.py", "--tiny", f"--out={out}"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True, text=True,
      # Now that configs have compute_dtype, the check also compiles its bfloat16 rows.
      timeout=3 * process_helpers.TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = json.loads(out.with_suffix(".json").read_text())
  assert json.loads(proc.stdout.splitlines()[0]) == summary  # The JSON line comes first.
  assert summary["backend"] == "cpu" and summary["num_devices"] == 1
  rows = [(r["batch"], r["steps_per_call"], r["dtype"]) for r in summary["benchmarks"]]
  best = summary["best_steps_per_call"]
  dtypes = ["float32", "bfloat16"] if summary["bfloat16"] else ["float32"]
  assert rows == ([(8, 1, "float32"), (8, 2, "float32")] + [(8, best, d) for d in dtypes[1:]]
                  + [(16, best, d) for d in dtypes])
  for r in summary["benchmarks"]:
    assert r["iter_ms"] > 0 and r["imgs_per_s"] > 0 and r["gflops_per_iter"] > 0, r
    assert r["peak_tflops"] is None and "pass --peak_tflops" in r["peak_source"]  # CPU.
  run = summary["training_run"]
  assert "error" not in run, run
  # configs/test.py logs every 2 steps: the trainer's CPU default runs calls of 2.
  assert run["steps"] == 8 and run["steps_per_sec"] > 0 and run["steps_per_call"] == 2
  assert run["seed_recipe_projected_min"] > 0 and run["eval_psnr"] > 0
  table = out.with_suffix(".txt").read_text()
  assert "seed recipe (312,500 iterations) projected" in table and table in proc.stdout


def test_a_data_dir_without_cifar10_is_refused_before_any_benchmark(tmp_path):
  proc = subprocess.run(
      [sys.executable, "scripts/accelerator_check.py", f"--data_dir={tmp_path}",
       f"--out={tmp_path / 'check'}"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True, text=True,
      timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 1 and proc.stdout == "", proc.stdout
  assert proc.stderr.strip() == (f"error: --data_dir={tmp_path} holds no prepared cifar10 (no "
                                 "cifar10/<version>/dataset_info.json): give the tfds directory "
                                 "where it was prepared")
