"""scripts/benchmark.py runs end to end on the tiny test model and reports what it promises.

A smoke test of the command and its record format, not of speed: timings are not asserted.
"""
import json
import subprocess
import sys

from tests import process_helpers


def test_benchmark_reports_one_json_record_per_batch():
  proc = subprocess.run(
      [sys.executable, "scripts/benchmark.py", "--config=configs/test.py", "--batch", "8,16",
       "--min_time=0.05", "--nopipeline", "--peak_tflops=1"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
  assert [r["batch"] for r in records] == [8, 16]
  for r in records:
    assert r["framework"] == "jax"
    assert r["g_params"] > r["d_params"] > 0  # The tiny test models' sizes.
    for key in ("imgs_per_s", "iter_ms", "compile_s", "critic_compile_s", "gen_compile_s",
                "gflops_per_iter", "flop_utilisation"):
      assert r[key] > 0, (key, r)
    # The second compile is a hit in the fresh persistent cache, which skips XLA entirely.
    assert 0 <= r["compile_cached_s"] < r["compile_s"], r
    assert r["iter"]["min"] <= r["iter_ms"] <= r["iter"]["max"]
    # images/s counts every batch of the iteration (one per critic step).
    assert abs(r["imgs_per_s"] - r["batch"] * r["n_critic"] / (r["iter_ms"] / 1e3)) < (
        0.01 * r["imgs_per_s"] + 0.1)
  assert "framework  batch" in proc.stdout  # The readable table follows the records.


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
