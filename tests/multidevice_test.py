"""One device vs four: the same training iterations on 1 and 4 (fake CPU) devices.

The device count of a process is fixed when jax starts, so the comparison runs in a child
process with XLA_FLAGS=--xla_force_host_platform_device_count=4, which prints its results as
JSON; the assertions are here. The child compiles four steps (1-device jit, 4-device jit, and
pmap vs jit on a second config) and three fused calls (the trainer's `train_calls`).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = textwrap.dedent(r'''
  import functools, json
  import jax, numpy as np
  from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
  from colorize import device_data, input_pipeline, train_calls, train_step
  from configs import test as test_config

  assert jax.device_count() == 4, jax.devices()
  ITERATIONS = 2

  def setup(**overrides):
    config = test_config.get_config()
    config.update(overrides)
    state = jax.device_get(train_step.create_train_state(config, jax.random.key(config.seed)))
    k = input_pipeline.batches_per_step(config)
    shape = (k, config.batch_size, config.image_size, config.image_size, 3)
    images = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    return train_step.StepConfig.from_config(config), state, images

  def run_jit(hp, state, images, num_devices):
    """The trainer's path: state replicated, batch sharded on "data" (donated off CPU)."""
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("data",))
    replicated = NamedSharding(mesh, P())
    # From host copies: where the step donates its state, it must not be `state`'s buffers.
    state = jax.device_put(state, replicated)
    images = jax.device_put(images, NamedSharding(mesh, P(None, "data")))
    key = jax.device_put(jax.random.key(0), replicated)
    step = train_step.jit_train_iteration(hp)
    for _ in range(ITERATIONS):
      state, metrics = step(state, images, key)
    replicated_out = all(x.sharding.is_fully_replicated and len(x.sharding.device_set)
                         == num_devices for x in jax.tree.leaves(state))
    return jax.device_get(state), jax.device_get(metrics), replicated_out

  def run_pmap(hp, state, images, n=4):
    """Per-device batch slices; `axis_name` makes the step average grads and BN statistics."""
    step = jax.pmap(functools.partial(train_step.train_iteration, hp=hp, axis_name="batch"),
                    axis_name="batch", in_axes=(0, 0, None))
    state = jax.tree.map(lambda x: np.stack([np.asarray(x)] * n), state)
    k, b = images.shape[:2]
    # [K, B, ...] -> [n, K, B / n, ...]: device d gets the d-th contiguous slice of every
    # batch, as P(None, "data") gives it under jit.
    images = images.reshape(k, n, b // n, *images.shape[2:]).swapaxes(0, 1)
    for _ in range(ITERATIONS):
      state, metrics = step(state, images, jax.random.key(0))
    return jax.device_get(state), jax.device_get(metrics)

  def trainable(state):
    return {"gen_params": state.gen_params, "gen_batch_stats": state.gen_batch_stats,
            "critic_params": state.critic_params}

  def max_diff(a, b):
    """Max |a - b| per top-level entry of two pytrees with the same structure."""
    return {name: max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y))))
                      for x, y in zip(jax.tree.leaves(a[name]), jax.tree.leaves(b[name])))
            for name in a}

  def max_change(a, b):
    return max(max_diff(a, b).values())

  result = {}
  # (a) The test config as is (wgan_gp with the penalty, batch norm, dropout 0.5).
  hp, state, images = setup()
  one, metrics_one, _ = run_jit(hp, state, images, 1)
  four, metrics_four, replicated = run_jit(hp, state, images, 4)
  result["jit"] = dict(
      diff=max_diff(trainable(one), trainable(four)),
      change=max_change(trainable(state), trainable(one)),
      steps=[int(one.step), int(four.step)], replicated=replicated,
      metrics_one={k: float(v) for k, v in metrics_one.items()},
      metrics_four={k: float(v) for k, v in metrics_four.items()})

  # (b) pmap vs jit, penalty on, with the classification head (its cross-entropy is averaged
  # over the devices too), the batch's joint distribution of lightness and colour (gathered
  # from the devices) and the critic's augmentation. The penalty's eps and the augmentations
  # are drawn for the global batch and sliced per device, so they match jit exactly; dropout
  # masks are drawn per device (the device index is folded into the key), equal to jit's
  # only in distribution, hence dropout 0 here.
  hp, state, images = setup(swd_weight=10.0, swd_scope="batch", swd_space="lab",
                            critic_augment="translation,cutout",
                            model=dict(dropout=0.0, head="classification"))
  jit_state, jit_metrics, _ = run_jit(hp, state, images, 4)
  pmap_state, pmap_metrics = run_pmap(hp, state, images)
  per_device = max(max_change(trainable(jax.tree.map(lambda x: x[0], pmap_state)),
                              trainable(jax.tree.map(lambda x: x[d], pmap_state)))
                   for d in range(1, 4))
  result["pmap"] = dict(
      diff=max_diff(trainable(jit_state), trainable(jax.tree.map(lambda x: x[0], pmap_state))),
      devices_agree=per_device, steps=[int(s) for s in pmap_state.step],
      metrics_jit={k: float(v) for k, v in jit_metrics.items()},
      metrics_pmap={k: float(v[0]) for k, v in pmap_metrics.items()})

  # (c) The trainer's fused calls (2 iterations per call): host batches on 1 device vs the
  # training split on 4 devices, replicated and sharded, batches gathered there.
  config = test_config.get_config()
  hp, state, _ = setup()
  split_images = input_pipeline.train_array(config)
  plans = np.stack(list(input_pipeline.train_plans(config, split_images.shape[1:3],
                                                   start_step=0, num_steps=ITERATIONS)))
  batches = np.stack(list(input_pipeline.train_batches(config, start_step=0,
                                                       num_steps=ITERATIONS)))

  def run_call(num_devices, shard=None):
    mesh = Mesh(np.array(jax.devices()[:num_devices]), ("data",))
    replicated = NamedSharding(mesh, P())
    key = jax.device_put(jax.random.key(0), replicated)
    if shard is None:
      call = train_calls.jit_train_call(hp, "stop")
      xs, split = jax.device_put(batches, NamedSharding(mesh, P(None, None, "data"))), None
    else:
      split = device_data.put(split_images, mesh, shard=shard)
      call = train_calls.jit_train_call(hp, "stop", mesh=mesh, image_size=config.image_size,
                                        sharded=shard)
      xs = jax.device_put(plans, replicated)
    out, metrics, _ = call(jax.device_put(state, replicated), xs, key, split)
    return jax.device_get(out), {k: np.asarray(v).tolist() for k, v in metrics.items()}

  host_one, metrics_host = run_call(1)
  result["calls"] = {}
  for shard in (False, True):
    four, metrics_four = run_call(4, shard)
    result["calls"]["sharded" if shard else "replicated"] = dict(
        diff=max_diff(trainable(host_one), trainable(four)), steps=int(four.step),
        metrics_host=metrics_host, metrics_four=metrics_four)
  print("RESULT " + json.dumps(result))
''')


@pytest.fixture(scope="module")
def result():
  env = dict(os.environ)
  env["JAX_PLATFORMS"] = "cpu"
  # --xla_backend_optimization_level=0, as tests/conftest.py sets for the parent: LLVM's
  # optimisation dominates compile time for this tiny model (threefry alone takes ~1 s per
  # shape at the default level) and changes nothing the comparison depends on.
  env["XLA_FLAGS"] = ("--xla_force_host_platform_device_count=4 "
                      "--xla_backend_optimization_level=0")
  env["PYTHONPATH"] = os.pathsep.join([_REPO] + env.get("PYTHONPATH", "").split(os.pathsep))
  proc = subprocess.run([sys.executable, "-c", _CHILD], cwd=_REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-5000:]
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
  return json.loads(lines[0][len("RESULT "):])


def test_jit_one_device_equals_four_devices(result):
  # Under jit the batch is one global array whatever its sharding: batch norm's statistics,
  # the gradients, dropout masks and the penalty's eps are those of the whole batch, so the
  # sharded run computes the 1-device run up to the order of floating-point sums.
  r = result["jit"]
  assert r["steps"] == [2, 2]
  assert r["replicated"]  # The state stays replicated on all 4 devices across iterations.
  assert r["change"] > 1e-4  # The params did move, so the comparison is not vacuous.
  for name, diff in r["diff"].items():
    assert diff < 1e-5, (name, diff)
  assert set(r["metrics_one"]) == set(r["metrics_four"])
  for name, value in r["metrics_one"].items():
    assert r["metrics_four"][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_pmap_equals_jit(result):
  # Same as above with jax.pmap: gradients and metrics are pmean'd and batch norm averages
  # its statistics over the pmap axis (the generator is cloned with axis_name).
  r = result["pmap"]
  assert r["steps"] == [2, 2, 2, 2]
  assert r["devices_agree"] == 0.0  # Replicas stay bitwise identical.
  for name, diff in r["diff"].items():
    assert diff < 1e-5, (name, diff)
  # Every metric agrees, the penalty's included: its eps are the global batch's.
  assert set(r["metrics_jit"]) == set(r["metrics_pmap"])
  assert {"cross_entropy", "sliced_wasserstein"} <= set(r["metrics_jit"])
  for name, value in r["metrics_jit"].items():
    assert r["metrics_pmap"][name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


@pytest.mark.parametrize("placement", ["replicated", "sharded"])
def test_fused_calls_on_four_devices_with_the_split_on_device_equal_one_device(result,
                                                                              placement):
  # Two iterations per call; on 4 devices each gathers its part of the batch from the split
  # (replicated, or sharded with the crops summed over devices) instead of receiving it.
  r = result["calls"][placement]
  assert r["steps"] == 2
  for name, diff in r["diff"].items():
    assert diff < 1e-5, (name, diff)
  assert set(r["metrics_host"]) == set(r["metrics_four"])
  for name, values in r["metrics_host"].items():
    assert len(values) == 2  # One value per iteration of the call.
    assert r["metrics_four"][name] == pytest.approx(values, rel=1e-4, abs=1e-5), name
