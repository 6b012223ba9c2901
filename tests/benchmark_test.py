"""scripts/benchmark.py runs end to end on the tiny test model and reports what it promises.

A smoke test of the command and its record format, not of speed: timings are not asserted.
"""
import json
import os
import subprocess
import sys

import pytest

from tests import process_helpers


def test_benchmark_reports_one_json_record_per_batch_and_dtype():
  proc = subprocess.run(
      [sys.executable, "scripts/benchmark.py", "--config=configs/test.py", "--batch", "8",
       "--dtypes=float32,bfloat16", "--rounds=2", "--min_time=0.05", "--peak_n=128",
       "--nopipeline", "--peak_tflops=1", "--config.steps_per_call=2"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=2 * process_helpers.TIMEOUT)  # Eight compiles: two dtypes, four each.
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  peak, *records = lines
  assert set(peak["matmul_peak_gflops"]) == {"float32", "bfloat16"}
  assert all(v > 0 for v in peak["matmul_peak_gflops"].values())
  assert [(r["batch"], r["dtype"]) for r in records] == [(8, "float32"), (8, "bfloat16")]
  for r in records:
    assert r["framework"] == "jax" and r["steps_per_call"] == 2
    assert r["g_params"] > r["d_params"] > 0  # The tiny test models' sizes.
    for key in ("imgs_per_s", "iter_ms", "compile_s", "critic_compile_s", "gen_compile_s",
                "model_gflops_per_iter", "xla_gflops_per_iter", "xla_gbytes_per_iter",
                "achieved_gflops",
                "flop_utilisation", "nominal_flop_utilisation"):
      assert r[key] > 0, (key, r)
    # The real multiply-adds are fewer than XLA's count, which includes padded taps.
    assert r["model_gflops_per_iter"] < r["xla_gflops_per_iter"], r
    assert abs(r["achieved_gflops"] - r["model_gflops_per_iter"] / (r["iter_ms"] / 1e3)) < (
        0.01 * r["achieved_gflops"] + 0.1)
    assert r["flop_utilisation"] == pytest.approx(
        r["achieved_gflops"] / peak["matmul_peak_gflops"]["float32"], rel=0.01)
    # The second compile is a hit in the fresh persistent cache, which skips XLA entirely.
    assert 0 <= r["compile_cached_s"] < r["compile_s"], r
    assert r["iter"]["min"] <= r["iter_ms"] <= r["iter"]["max"]
    assert len(r["rounds_iter_ms"]) == len(r["load"]) == 2
    # Per iteration, at most every core busy for the whole iteration (2x for the rounds'
    # own overhead): catches a total per round, or seconds, reported as ms per iteration.
    cpu_ms = r["cpu_ms_per_iter"]["user"] + r["cpu_ms_per_iter"]["sys"]
    assert 0 < cpu_ms < 2 * os.cpu_count() * r["iter"]["max"], r
    assert r["minor_faults_per_iter"] >= 0
    # images/s counts every batch of the iteration (one per critic step).
    assert abs(r["imgs_per_s"] - r["batch"] * r["n_critic"] / (r["iter_ms"] / 1e3)) < (
        0.01 * r["imgs_per_s"] + 0.1)
  assert "framework  dtype" in proc.stdout  # The readable table follows the records.


def test_compare_torch_refuses_a_model_other_than_the_reference():
  proc = subprocess.run(
      [sys.executable, "scripts/benchmark.py", "--config=configs/test.py", "--batch=8",
       "--nopipeline", "--compare-torch"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode != 0
  error = proc.stderr.strip().splitlines()[-1]
  assert error.startswith("error: --compare_torch needs the reference's model"), error
  assert "16655554" in error and "configs/cifar10.py" in error


@pytest.mark.parametrize("script, flag, error", [
    ("benchmark.py", "--batch=16,0", "give positive batch sizes"),
    ("benchmark.py", "--rounds=0", "--rounds=0: 0 is not"),
    ("profile_step.py", "--batch=0", "--batch=0: 0 is not a positive integer"),
])
def test_a_batch_or_count_below_one_is_a_flag_error_not_a_traceback(script, flag, error):
  proc = subprocess.run(
      [sys.executable, f"scripts/{script}", "--config=configs/test.py", flag],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode != 0 and error in proc.stderr, proc.stderr
  assert "Traceback" not in proc.stderr
