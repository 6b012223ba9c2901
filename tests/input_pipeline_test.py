"""Tests for colorize.input_pipeline: shapes, determinism, resume, sharding, the three sources."""

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from colorize import input_pipeline
from colorize import shapes
from colorize.errors import UserError
from configs import cifar10
from tests import helpers

CIFAR_SUBSET = str(helpers.CIFAR_SUBSET)


def _batches(config, start_step=0, num_steps=4, **kwargs):
  return list(input_pipeline.train_batches(config, start_step=start_step, num_steps=num_steps,
                                           **kwargs))


def _key(image):
  """Identifies a source image whether or not it was flipped."""
  return min(image.tobytes(), image[:, ::-1].tobytes())


def _solid(path, mode, size, fill, **save_kwargs):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.new(mode, size, fill).save(path, **save_kwargs)


def test_shapes_and_dtypes():
  config = helpers.config(n_critic=2)
  batches = _batches(config)
  assert len(batches) == 4
  for batch in batches:
    assert batch.shape == (2, 8, 8, 8, 3) and batch.dtype == np.uint8
  assert input_pipeline.num_train_examples(config) == 4096
  assert input_pipeline.steps_per_epoch(config) == 4096 // 16
  assert input_pipeline.steps_per_epoch(helpers.config(batch_size=8192)) == 1
  images = input_pipeline.eval_images(config, 16)
  assert images.shape == (16, 8, 8, 3) and images.dtype == np.uint8
  assert input_pipeline.eval_images(config, 10_000).shape == (256, 8, 8, 3)
  assert input_pipeline.eval_images(helpers.config(image_size=48), 2).shape == (2, 48, 48, 3)


def test_same_seed_same_batches_other_seed_other_batches():
  first = _batches(helpers.config(seed=3))
  np.testing.assert_array_equal(first, _batches(helpers.config(seed=3, data_threads=4)))
  assert not np.array_equal(first, _batches(helpers.config(seed=4)))


def test_eval_images_are_deterministic_and_in_order():
  config = helpers.config()
  images = input_pipeline.eval_images(config, 8)
  np.testing.assert_array_equal(images, input_pipeline.eval_images(config, 8))
  np.testing.assert_array_equal(images[:3], input_pipeline.eval_images(config, 3))


def test_resume_yields_the_tail():
  config = helpers.config(n_critic=2)
  everything = _batches(config, num_steps=6)
  np.testing.assert_array_equal(_batches(config, start_step=4, num_steps=6), everything[4:])
  # The order is a function of the step alone, not of how many steps were asked for.
  np.testing.assert_array_equal(_batches(config, num_steps=3), everything[:3])


def test_each_epoch_is_a_new_permutation():
  config = helpers.config(batch_size=512, eval_split="train")  # 8 steps an epoch.
  source = input_pipeline.eval_images(config, 4096)
  keys = sorted(_key(image) for image in source)
  batches = np.concatenate(_batches(config, num_steps=16)).reshape(2, 4096, 8, 8, 3)
  epoch_keys = [[_key(image) for image in epoch] for epoch in batches]
  assert sorted(epoch_keys[0]) == keys and sorted(epoch_keys[1]) == keys
  assert epoch_keys[0] != epoch_keys[1]


@pytest.mark.parametrize("process_count", [2, 4])
def test_process_shards_concatenate_to_the_global_batch(process_count):
  config = helpers.config(n_critic=2)
  expected = _batches(config, start_step=1, num_steps=4)
  shards = [_batches(config, start_step=1, num_steps=4, process_index=i,
                     process_count=process_count) for i in range(process_count)]
  for step, batch in enumerate(expected):
    np.testing.assert_array_equal(np.concatenate([s[step] for s in shards], axis=1), batch)


def test_batch_size_must_divide_by_process_count():
  with pytest.raises(UserError, match="batch_size"):
    _batches(helpers.config(), process_count=3)


def test_flips_about_half_the_images():
  config = helpers.config(eval_split="train")
  source = {image.tobytes(): True for image in input_pipeline.eval_images(config, 4096)}
  images = np.concatenate(_batches(config, num_steps=32)).reshape(-1, 8, 8, 3)
  flipped = [image.tobytes() not in source for image in images]
  assert all(image[:, ::-1].tobytes() in source for image, f in zip(images, flipped) if f)
  assert 0.3 < np.mean(flipped) < 0.7


def test_shapes_color_follows_the_scene():
  images = input_pipeline.eval_images(helpers.config(image_size=32), 64)
  # Medians over images and columns, so the shapes in some images do not count.
  top, bottom = np.median(images[:, 0], (0, 1)), np.median(images[:, -1], (0, 1))
  assert top[2] > top[1] > top[0]  # Blue sky.
  assert bottom[1] > bottom[0] and bottom[1] > bottom[2]  # Green ground.


def test_folder_decodes_modes_sizes_and_nesting(tmp_path):
  palette = Image.new("P", (10, 14), 1)
  palette.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
  (tmp_path / "b").mkdir()
  palette.save(tmp_path / "b" / "palette.png")
  expected = {tmp_path / "b" / "palette.png": (0, 0, 255)}
  for name, mode, size, fill, rgb in [
      ("a/rgb.png", "RGB", (20, 12), (200, 30, 40), (200, 30, 40)),
      ("a/deep/gray.PNG", "L", (9, 9), 77, (77, 77, 77)),
      ("a/deep/rgba.webp", "RGBA", (8, 16), (10, 200, 30, 128), (10, 200, 30)),
      ("c/sixteen.tif", "I;16", (12, 8), 0x8000, (128, 128, 128)),
      ("c/cmyk.jpg", "CMYK", (16, 16), (0, 255, 255, 0), (255, 0, 0)),
      ("photo.JPEG", "RGB", (40, 24), (30, 60, 90), (30, 60, 90)),
      ("d/plain.bmp", "RGB", (8, 8), (1, 2, 3), (1, 2, 3))]:
    _solid(tmp_path / name, mode, size, fill)
    expected[tmp_path / name] = rgb
  (tmp_path / "notes.txt").write_text("not an image, and not an image extension")
  config = helpers.config(dataset=f"folder:{tmp_path}")
  images = input_pipeline.eval_images(config, 100)  # < 10 files: eval uses all of them.
  order = sorted(expected, key=str)
  assert images.shape == (len(order), 8, 8, 3)
  for image, path in zip(images, order):
    np.testing.assert_allclose(image.reshape(-1, 3).mean(0), expected[path], atol=4,
                               err_msg=str(path))
  assert input_pipeline.num_train_examples(config) == len(order)
  assert _batches(config)[0].shape == (1, 8, 8, 8, 3)


def test_folder_applies_exif_orientation(tmp_path):
  image = np.zeros((8, 16, 3), np.uint8)  # Left half red, right half blue.
  image[:, :8, 0] = image[:, 8:, 2] = 255
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise for display.
  Image.fromarray(image).save(tmp_path / "rotated.png", exif=exif)
  shown = input_pipeline.eval_images(helpers.config(dataset=f"folder:{tmp_path}"), 1)[0]
  # Upright it is 8 wide and 16 high, red on top: the center crop is half red, half blue.
  assert shown[:4, :, 0].min() == 255 and shown[4:, :, 2].min() == 255


def test_folder_split_rule(tmp_path):
  for i in range(25):
    _solid(tmp_path / f"{i:02d}.png", "L", (8, 8), i * 10)
  config = helpers.config(dataset=f"folder:{tmp_path}")
  assert input_pipeline.num_train_examples(config) == 22
  np.testing.assert_array_equal(input_pipeline.eval_images(config, 100)[:, 0, 0, 0],
                                [0, 100, 200])
  train_values = {int(v) for v in np.concatenate(_batches(config))[..., 0, 0, 0].ravel()}
  assert train_values <= {i * 10 for i in range(25) if i % 10}


def test_folder_skips_broken_files(tmp_path, caplog):
  for i in range(12):
    _solid(tmp_path / f"a{i:02d}.png", "RGB", (8, 8), (i * 20, 0, 0))
  (tmp_path / "a05_corrupt.jpg").write_bytes(np.random.default_rng(0).bytes(500))
  (tmp_path / "a07_empty.png").write_bytes(b"")
  whole = (tmp_path / "a09.png").read_bytes()
  (tmp_path / "a09_truncated.png").write_bytes(whole[:len(whole) // 2])
  bad = ["a05_corrupt.jpg", "a07_empty.png", "a09_truncated.png"]
  files = sorted(str(p) for p in tmp_path.iterdir())
  assert all(files.index(str(tmp_path / name)) % 10 for name in bad)  # All in the train split.

  config = helpers.config(dataset=f"folder:{tmp_path}", data_threads=2)
  batches = _batches(config, num_steps=8)  # 64 images from 13 files: every file is read.
  assert all(batch.shape == (1, 8, 8, 8, 3) for batch in batches)
  reds = set(np.concatenate(batches)[..., 0, 0, 0].ravel().tolist())
  assert reds <= {i * 20 for i in range(12)}
  for name in bad:
    warnings = [r for r in caplog.records if name in r.getMessage()]
    assert len(warnings) == 1 and "skipped" in warnings[0].getMessage(), name


def test_folder_where_nothing_decodes(tmp_path):
  (tmp_path / "empty.png").write_bytes(b"")
  (tmp_path / "text.jpg").write_text("hello")
  with pytest.raises(UserError, match="none of the 2 image files"):
    input_pipeline.eval_images(helpers.config(dataset=f"folder:{tmp_path}"), 1)


def test_missing_folder(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(UserError, match=str(missing)):
    input_pipeline.num_train_examples(helpers.config(dataset=f"folder:{missing}"))


def test_shapes_has_no_other_splits():
  with pytest.raises(UserError, match="'train\\[:90%\\]'"):
    input_pipeline.eval_images(helpers.config(eval_split="train[:90%]"), 1)


def test_shapes_splits_differ():
  train, validation, test = (input_pipeline.eval_images(helpers.config(eval_split=split), 4)
                             for split in ("train", "validation", "test"))
  assert not np.array_equal(train, validation) and not np.array_equal(validation, test)


def test_random_jitter_crops_from_a_larger_resize():
  # pix2pix: resize to 286/256 of the size, then a random crop; the crops move around.
  config = helpers.config(image_size=32, batch_size=64, random_jitter=True)
  assert input_pipeline.load_size(config) == 36
  batch = _batches(config, num_steps=1)[0][0]
  source = [np.asarray(Image.fromarray(image).resize((36, 36), Image.Resampling.BILINEAR))
            for image in input_pipeline.eval_images(helpers.config(image_size=32,
                                                                   eval_split="train"), 4096)]
  # Every training image is a 32x32 window (maybe flipped) of a training image resized to 36.
  windows = {image[t:t + 32, l:l + 32].tobytes(): (t, l)
             for image in source for t in range(5) for l in range(5)}
  offsets = [windows.get(image.tobytes(), windows.get(image[:, ::-1].tobytes()))
             for image in batch]
  assert None not in offsets
  assert len(set(offsets)) > 5


@helpers.needs_cifar_subset
def test_tfds_cifar_subset():
  config = helpers.config(dataset="cifar10", data_dir=CIFAR_SUBSET, image_size=32, batch_size=16,
                          train_split="train", eval_split="test")
  assert input_pipeline.num_train_examples(config) == 5085
  batches = _batches(config, num_steps=2)
  assert [b.shape for b in batches] == [(1, 16, 32, 32, 3)] * 2
  test_split = tfds.data_source("cifar10", split="test", data_dir=CIFAR_SUBSET)
  expected = np.stack([test_split[i]["image"] for i in range(10)])
  np.testing.assert_array_equal(input_pipeline.eval_images(config, 10), expected)
  config.image_size = 24  # Resized and center-cropped.
  assert input_pipeline.eval_images(config, 3).shape == (3, 24, 24, 3)


@helpers.needs_cifar_subset
def test_cifar_default_splits_hold_out_a_validation_tenth():
  config = cifar10.get_config()
  config.data_dir = CIFAR_SUBSET
  train = tfds.data_source("cifar10", split="train", data_dir=CIFAR_SUBSET)
  assert input_pipeline.num_train_examples(config) == 4576  # 90% of the subset's 5,085.
  for variant in ("subset", "fast,subset", "wgan_gp_paper,subset"):
    subset = cifar10.get_config(variant)  # Its epoch in steps, as the pipeline counts them.
    subset.data_dir = CIFAR_SUBSET
    assert subset.eval_every_steps == input_pipeline.steps_per_epoch(subset), variant
  validation = input_pipeline.eval_images(config, 10**6)
  assert len(validation) == 5085 - 4576
  np.testing.assert_array_equal(validation[:5], np.stack([train[4576 + i]["image"]
                                                          for i in range(5)]))


def test_tfds_mock_data(tmp_path, monkeypatch):
  # mock_data serves examples without files; the trainer reads only a prepared dataset.
  monkeypatch.setattr(tfds.core.DatasetBuilder, "is_prepared", lambda self: True)
  for name, channels in [("cifar10", 3), ("mnist", 1)]:
    config = helpers.config(dataset=name, data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=20):
      assert _batches(config, num_steps=2)[0].shape == (1, 8, 8, 8, 3)
      images = input_pipeline.eval_images(config, 5)
    assert images.shape == (5, 8, 8, 3), name
    if channels == 1:
      np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_tfds_not_prepared_fails_at_once_naming_the_command_that_prepares_it(tmp_path):
  with pytest.raises(UserError) as error:
    input_pipeline.num_train_examples(helpers.config(dataset="cifar10", data_dir=str(tmp_path)))
  assert (f"prepare it once with `tfds build cifar10 --file_format=array_record "
          f"--data_dir={tmp_path}`") in str(error.value) and "\n" not in str(error.value)
  assert not list(tmp_path.rglob("*.tar.gz"))  # Nothing was downloaded.


def test_unknown_tfds_name():
  with pytest.raises(UserError, match="config.dataset='no_such_dataset'.*folder:"):
    input_pipeline.num_train_examples(helpers.config(dataset="no_such_dataset"))


def _labelled(**overrides):
  config = helpers.config(**overrides)
  config.model.num_classes = 3  # The shapes dataset's kinds.
  return config


def test_labels_follow_the_images_batch_for_batch():
  # The plans name each image of a global batch; the labels of those images are the label
  # stream's, and the processes' label shards concatenate to the global labels as their
  # image shards do.
  config = _labelled(batch_size=4)
  labels = input_pipeline.label_array(config)
  assert labels.dtype == np.int32 and set(labels) == {0, 1, 2}
  plans = list(input_pipeline.train_plans(config, (8, 8), start_step=1, num_steps=6))
  stream = list(input_pipeline.train_labels(config, labels, start_step=1, num_steps=6))
  assert [s.shape for s in stream] == [(1, 4)] * 5
  np.testing.assert_array_equal(np.stack(stream), labels[np.stack(plans)[..., 0]])
  shards = [list(input_pipeline.train_labels(config, labels, start_step=1, num_steps=6,
                                             process_index=i, process_count=2))
            for i in range(2)]
  np.testing.assert_array_equal(np.concatenate([np.stack(s) for s in shards], axis=2),
                                np.stack(stream))


def test_shape_labels_are_the_kinds_of_the_training_images_first_shapes():
  config = _labelled()
  kinds = [shapes.draw(np.random.default_rng([0, i]), config.image_size)[1]
           for i in range(10)]  # Split id 0, the training split.
  np.testing.assert_array_equal(input_pipeline.label_array(config)[:10], kinds)


def test_labels_refused_where_the_dataset_has_none_or_other_classes(tmp_path):
  _solid(tmp_path / "a.png", "RGB", (8, 8), (1, 2, 3))
  config = _labelled(dataset=f"folder:{tmp_path}")
  with pytest.raises(UserError, match=r"config.model.num_classes=3: a folder .* set it and "
                                      r"config.class_weight to 0"):
    input_pipeline.label_array(config)
  config = _labelled()
  config.model.num_classes = 10
  with pytest.raises(UserError, match=r"num_classes=10, but 'shapes' has 3 classes: set it to 3"):
    input_pipeline.label_array(config)


@helpers.needs_cifar_subset
def test_cifar_labels_are_the_tfds_labels():
  config = cifar10.get_config()
  config.data_dir, config.model.num_classes = CIFAR_SUBSET, 10
  train = tfds.data_source("cifar10", split="train", data_dir=CIFAR_SUBSET)
  labels = input_pipeline.label_array(config)
  assert labels.shape == (4576,)
  np.testing.assert_array_equal(labels[:50], [train[i]["label"] for i in range(50)])
