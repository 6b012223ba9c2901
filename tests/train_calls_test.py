"""Several iterations per compiled call, and batches gathered on device, change nothing trained.

K = 1 and K = 8 (config.steps_per_call) give bitwise-equal states; the device path
(config.data_on_device) gives the host pipeline's batches, bit for bit, and the same run.
"""
import jax
import numpy as np
from PIL import Image
import pytest

from colorize import device_data
from colorize import input_pipeline
from colorize import train
from colorize import train_calls
from colorize.errors import UserError
from tests import helpers

STEPS = 16


def _run(tmp_path, name, **overrides):
  config = helpers.config(num_train_steps=STEPS, log_every_steps=8, checkpoint_every_steps=8,
                          eval_every_steps=1000, **overrides)
  state = train.train_and_evaluate(config, str(tmp_path / name))
  return state, helpers.jsonl(tmp_path / name)


def _assert_same_state(a, b):
  leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def one_step_per_call(tmp_path_factory):
  return _run(tmp_path_factory.mktemp("k1"), "run", steps_per_call=1)


def test_eight_steps_per_call_train_bitwise_like_one(tmp_path, one_step_per_call):
  state, rows = _run(tmp_path, "k8", steps_per_call=8)
  _assert_same_state(state, one_step_per_call[0])
  assert rows == one_step_per_call[1]  # Per-step metrics, logged at the same steps.
  assert [r["step"] for r in rows if "l1" in r] == [8, 16]


def test_intervals_that_are_not_multiples_of_k_shorten_the_calls(tmp_path, one_step_per_call):
  # K = 5 with logs and saves every 8 steps: calls of 5, then 3 of one step, up to 8; again.
  state, _ = _run(tmp_path, "k5", steps_per_call=5)
  _assert_same_state(state, one_step_per_call[0])


def test_data_on_device_trains_bitwise_like_the_host_pipeline(tmp_path, one_step_per_call):
  state, rows = _run(tmp_path, "device", steps_per_call=8, data_on_device=True)
  _assert_same_state(state, one_step_per_call[0])
  assert rows == one_step_per_call[1]


def test_calls_stop_at_every_boundary():
  config = helpers.config(log_every_steps=100, eval_every_steps=3125,
                          checkpoint_every_steps=3125)
  stops = [train._next_stop(s, 10_000, config, {317: "epoch_001"}) for s in (0, 300, 317, 3100)]
  assert stops == [100, 317, 400, 3125]


def test_auto_steps_per_call_by_backend():
  config = helpers.config(log_every_steps=100, steps_per_call=0)
  assert train_calls.steps_per_call(config, "cpu") == 5  # The largest divisor up to 8.
  assert train_calls.steps_per_call(config, "gpu") == 100
  config.log_every_steps = 1000  # The largest divisor up to 128.
  assert train_calls.steps_per_call(config, "tpu") == 125
  config.steps_per_call = 7
  assert train_calls.steps_per_call(config, "gpu") == 7


def _uniform_folder(path, count, shape):
  path.mkdir()
  rng = np.random.default_rng(0)
  for i in range(count):
    Image.fromarray(rng.integers(0, 256, shape + (3,), np.uint8)).save(path / f"{i:03d}.png")
  return f"folder:{path}"


@pytest.mark.parametrize("source,jitter", [("shapes", False), ("shapes", True),
                                           ("folder", False), ("folder", True)])
def test_device_batches_equal_host_batches_across_epochs(tmp_path, source, jitter):
  if source == "shapes":  # 4096 images: 32 steps an epoch; with jitter resized to 9x9.
    config = helpers.config(n_critic=2, batch_size=64, random_jitter=jitter)
    num_steps = 80
  else:  # 12x10 images, resized to 10x8 (11x9 with jitter): the crops move and flip.
    config = helpers.config(dataset=_uniform_folder(tmp_path / "images", 40, (12, 10)),
                            random_jitter=jitter)
    num_steps = 300  # 36 training images: 4 steps an epoch.
  images = input_pipeline.train_array(config)
  host = list(input_pipeline.train_batches(config, start_step=0, num_steps=num_steps))
  plans = list(input_pipeline.train_plans(config, images.shape[1:3], start_step=0,
                                          num_steps=num_steps))
  assert len(plans) == len(host) == num_steps
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  gather = jax.jit(lambda split, plan: device_data.gather(split, plan, config.image_size, mesh,
                                                          sharded=False))
  split = device_data.put(images, mesh)
  device = [np.asarray(gather(split, plan)) for plan in plans]
  for step, (d, h) in enumerate(zip(device, host)):
    np.testing.assert_array_equal(d, h, err_msg=f"step {step}")
  flipped = plans[0][..., 3].astype(bool)
  assert 0 < flipped.mean() < 1
  moved = (source == "folder" or jitter)  # Else the load size is the crop: nothing to move.
  assert (plans[0][..., 1:3].max() > 0) == moved
  # The plans are those of the global batch: what all processes' host parts concatenate to.
  parts = [list(input_pipeline.train_batches(config, start_step=0, num_steps=3,
                                             process_index=i, process_count=2))
           for i in range(2)]
  for step in range(3):
    np.testing.assert_array_equal(np.concatenate([p[step] for p in parts], axis=1),
                                  device[step])


def test_data_on_device_refuses_a_folder_of_mixed_sizes(tmp_path):
  folder = tmp_path / "images"
  _uniform_folder(folder, 12, (12, 10))
  Image.new("RGB", (16, 9)).save(folder / "wide.png")
  config = helpers.config(dataset=f"folder:{folder}", data_on_device=True)
  with pytest.raises(UserError, match=r"^config\.data_on_device=True needs every training "
                     r"image at one shape.*--config\.data_on_device=False$"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not (tmp_path / "run" / "checkpoints").exists()


def test_class_labels_follow_the_batches_on_device_and_across_a_resume(tmp_path):
  # The auxiliary classifier sees each image's own label whichever path brings the images:
  # host batches one step per call, device batches eight per call, and a run resumed half way.
  labelled = dict(class_weight=1.0, model=dict(num_classes=3))
  host, rows = _run(tmp_path, "host", steps_per_call=1, **labelled)
  assert [r["step"] for r in rows if "class_ce" in r] == [8, 16]
  device, device_rows = _run(tmp_path, "device", steps_per_call=8, data_on_device=True,
                             **labelled)
  _assert_same_state(device, host)
  assert device_rows == rows
  config = helpers.config(num_train_steps=STEPS // 2, log_every_steps=8,
                          checkpoint_every_steps=8, eval_every_steps=1000, steps_per_call=8,
                          **labelled)
  train.train_and_evaluate(config, str(tmp_path / "resumed"))
  config.num_train_steps = STEPS
  _assert_same_state(train.train_and_evaluate(config, str(tmp_path / "resumed")), host)
