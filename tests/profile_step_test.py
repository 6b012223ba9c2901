"""scripts/profile_step.py: the matmul FLOPs it reads from HLO, and the command end to end."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp

from tests import process_helpers

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts"))
import profile_step  # pylint: disable=g-import-not-at-top,wrong-import-position


def test_dot_flops_counts_each_matmul_once_where_it_runs():
  def f(a, b, c):
    def body(x, _):  # One [8, 16] @ [16, 16] per loop iteration: counted once, in the body.
      return jnp.tanh(x @ c), None
    x, _ = jax.lax.scan(body, a @ b, None, length=3)  # [8, 32] @ [32, 16] outside it.
    return jnp.einsum("ji,jk->ik", x, a[:, :5]) * 2  # x^T @ [8, 5]: contracted on x's dim 0.
  args = (jnp.ones((8, 32)), jnp.ones((32, 16)), jnp.ones((16, 16)))
  flops, sources = profile_step.dot_flops(jax.jit(f).lower(*args).compile().as_text())
  want = [2 * 8 * 16 * 32, 2 * 8 * 16 * 16, 2 * 16 * 5 * 8]
  assert sorted(v for v in flops.values() if v) == sorted(want)
  assert set(flops) == set(sources)  # Every operation has a (maybe empty) source.


def test_the_command_lists_operations_and_each_models_matmuls():
  proc = subprocess.run(
      [sys.executable, "scripts/profile_step.py", "--config=configs/test.py", "--batch=4",
       "--top=5", "--config.steps_per_call=2",
       "--config.model.conv_impl=matmul"],
      cwd=process_helpers.REPO, env=process_helpers.cpu_env(1), capture_output=True,
      text=True, timeout=process_helpers.TIMEOUT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.splitlines()
  assert lines[0].startswith("batch 4, 2 iterations per call")
  top = lines[2:lines.index("matmuls:")]
  assert len(top) == 5
  times = [float(line.split()[0]) for line in top]
  assert times == sorted(times, reverse=True) and times[-1] > 0
  models = {line.split()[-1]: float(line.split()[2])
            for line in lines[lines.index("matmuls:") + 1:]}
  assert set(models) == {"PatchCritic", "UNetGenerator"} and all(models.values()), models
