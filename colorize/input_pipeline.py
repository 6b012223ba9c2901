"""Training and evaluation images: uint8 RGB, NHWC, `config.image_size` square.

`config.dataset` picks the source:
  * a tfds name ("cifar10"): read with `tfds.data_source` (array_record, random access); splits
    may be slices, e.g. "train[:90%]" for training and "train[90%:]" for validation;
  * "folder:/path": every image file under the path (`image_files`: regular files, JPEG, PNG,
    TIFF, BMP or WebP); every 10th file (sorted) is the eval split, so
    `config.train_split`/`config.eval_split` are ignored;
  * "shapes": generated scenes whose colours follow the shapes (`colorize.shapes`), for
    offline quickstarts and tests.

The training order is a pure function of (config.seed, step), whatever the number of processes:
the global stream of examples is shuffled per epoch and augmented per example index (a random
crop, after pix2pix's resize to a larger size when `config.random_jitter`, and a horizontal
flip), cut into process-local chunks, and each process reads only its own chunks. Colour
conversion happens on device, elsewhere.

Each training example is a deterministic part (decode, resize the shorter side to the load size)
and a random crop plan (which image, where to crop, whether to flip), drawn by one grain
pipeline structure with the same seeds for both consumers: `train_batches` applies the plans on
the host; `train_plans` hands out only the plans, to be applied on device to `train_array`
(config.data_on_device), so the two give the same batches by construction.
"""
import functools
import os
import threading
from typing import Iterator

from absl import logging
import grain
import ml_collections
import numpy as np
from PIL import Image
from PIL import ImageOps
import tensorflow_datasets as tfds

from colorize import image_files
from colorize import shapes
from colorize.errors import UserError, first_line

# pix2pix's random jitter: images are resized to 286 / 256 of the crop size, then randomly
# cropped back to it (Isola et al. 2017, section 6.2).
JITTER_SCALE = 286 / 256
_ACCEPTED = ("config.dataset must be a tfds name (e.g. 'cifar10'), 'folder:/path/to/images' "
             "or 'shapes'")


def num_train_examples(config: ml_collections.ConfigDict) -> int:
  """Returns the number of images in the training split."""
  return len(_images(config, train=True))


def batches_per_step(config: ml_collections.ConfigDict) -> int:
  """Global batches one training step reads: one per critic update, one for loss="l1"."""
  return 1 if config.loss == "l1" else config.n_critic


def steps_per_epoch(config: ml_collections.ConfigDict) -> int:
  """Returns the training steps in one epoch (at least 1)."""
  return max(1, num_train_examples(config) // (config.batch_size * batches_per_step(config)))


def train_batches(config: ml_collections.ConfigDict, *, start_step: int, num_steps: int,
                  process_index: int = 0, process_count: int = 1) -> Iterator[np.ndarray]:
  """Yields this process's part of the batches of steps start_step, ..., num_steps - 1.

  Args:
    config: the experiment config.
    start_step: first training step to yield (a resumed run starts at its checkpoint's step).
    num_steps: the step after the last one to yield.
    process_index: this process, in [0, process_count).
    process_count: number of processes; each reads batch_size // process_count images a batch.

  Returns:
    An iterator of uint8 arrays [batches_per_step, batch_size // process_count, S, S, 3].
    Concatenating the arrays of processes 0..process_count-1 along axis 1 gives the
    single-process batch.
  """
  if config.batch_size % process_count:
    raise UserError(f"config.batch_size={config.batch_size} is not divisible by the "
                    f"{process_count} processes")
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index={process_index} not in [0, {process_count})")
  fit = functools.partial(_fit, size=config.image_size, load_size=load_size(config))
  return _train_stream(config, _images(config, train=True), fit, start_step, num_steps,
                       process_index, process_count)


def train_plans(config: ml_collections.ConfigDict, image_shape: tuple[int, int], *,
                start_step: int, num_steps: int) -> Iterator[np.ndarray]:
  """Yields the crop plans of the global batches of steps start_step, ..., num_steps - 1.

  Applied to `train_array(config)` (`device_data.gather`), they give exactly the batches of
  `train_batches` (all processes' parts, concatenated).

  Args:
    config: the experiment config.
    image_shape: (height, width) of every image of `train_array(config)`.
    start_step: first training step to yield.
    num_steps: the step after the last one to yield.

  Returns:
    An iterator of int32 arrays [batches_per_step, batch_size, 4]: per image (index into
    train_array, crop top, crop left, flip 0/1).
  """
  def plan(index, rng):
    return np.array([index, *_crop_plan(rng, image_shape, config.image_size)], np.int32)
  indices = grain.MapDataset.range(num_train_examples(config))
  return _train_stream(config, indices, plan, start_step, num_steps, 0, 1)


def _train_stream(config: ml_collections.ConfigDict, source: grain.MapDataset, fn,
                  start_step: int, num_steps: int, process_index: int,
                  process_count: int) -> Iterator[np.ndarray]:
  """`fn(source[i], rng)` per example in training order, batched as `train_batches` says.

  The one pipeline structure of both `train_batches` and `train_plans`: grain's shuffle and
  per-element rngs depend only on the dataset's length and the seeds, so a source of images
  and a source of their indices yield the same order and the same rng per example.
  """
  local_batch = config.batch_size // process_count
  # shuffle() shuffles epoch e with seed + e, so seeds 0 and 1 would share epoch orders (shifted
  # by one epoch); hashing the seed keeps runs with nearby seeds independent.
  shuffle_seed, augment_seed = np.random.SeedSequence(config.seed).generate_state(2).tolist()
  # Epochs only set the length: each block of len(source) indices is one epoch, shuffled on
  # its own, so the order does not depend on num_steps.
  num_examples = num_steps * batches_per_step(config) * config.batch_size
  num_epochs = max(1, -(-num_examples // len(source)))
  ds = source.shuffle(seed=shuffle_seed).repeat(num_epochs)
  # The rng is seeded by the index in the global stream: augmentation is independent of the
  # number of processes and differs between epochs.
  ds = ds.random_map(fn, seed=augment_seed)
  ds = ds.batch(local_batch, drop_remainder=True, batch_fn=np.stack)
  # Global batch g is chunks g * P, ..., g * P + P - 1; this process takes chunk g * P + index.
  ds = ds[process_index::process_count]
  ds = ds.batch(batches_per_step(config), drop_remainder=True, batch_fn=np.stack)
  ds = ds[start_step:num_steps]
  # Each thread builds whole steps; two steps in flight per thread keep the threads busy.
  options = grain.ReadOptions(num_threads=config.data_threads,
                              prefetch_buffer_size=2 * config.data_threads)
  return iter(ds.to_iter_dataset(options))


def train_labels(config: ml_collections.ConfigDict, labels: np.ndarray, *, start_step: int,
                 num_steps: int, process_index: int = 0,
                 process_count: int = 1) -> Iterator[np.ndarray]:
  """The class labels of `train_batches`' images (same arguments), batch for batch.

  For the auxiliary classification of config.class_weight: the same pipeline structure over
  the split's labels, so the order is the images' by construction. With process_index 0 and
  process_count 1 they are the labels of `train_plans`' global batches.

  Args:
    config: the experiment config.
    labels: `label_array(config)`.
    start_step, num_steps, process_index, process_count: as for `train_batches`.

  Returns:
    An iterator of int32 arrays [batches_per_step, batch_size // process_count].
  """
  return _train_stream(config, grain.MapDataset.source(labels), lambda label, rng: label,
                       start_step, num_steps, process_index, process_count)


def label_array(config: ml_collections.ConfigDict) -> np.ndarray:
  """The training split's class labels, in source order.

  Args:
    config: the experiment config.

  Returns:
    int32 [num_train_examples].

  Raises:
    UserError: the dataset has no class labels, or not config.model.num_classes of them.
  """
  wanted = config.model.num_classes
  if config.dataset == "shapes":
    num_classes = shapes.NUM_KINDS
    labels = shapes.dataset(config.train_split, config.image_size).map(
        lambda image_and_kind: image_and_kind[1])
  elif config.dataset.startswith("folder:"):
    raise UserError(f"config.model.num_classes={wanted}: a folder of images has no class "
                    "labels to classify; set it and config.class_weight to 0")
  else:
    # The labels only: the images are not decoded.
    source = _tfds_source(config, config.train_split, {"image": tfds.decode.SkipDecoding()})
    features = source.dataset_info.features
    num_classes = getattr(features["label"], "num_classes", None) if "label" in features else None
    if num_classes is None:
      raise UserError(f"config.model.num_classes={wanted}: {config.dataset!r} has no 'label' "
                      "class feature to classify; set it and config.class_weight to 0")
    labels = grain.MapDataset.source(source).map(lambda example: example["label"])
  if num_classes != wanted:
    raise UserError(f"config.model.num_classes={wanted}, but {config.dataset!r} has "
                    f"{num_classes} classes: set it to {num_classes}")
  options = grain.ReadOptions(num_threads=config.data_threads)
  return np.fromiter(labels.to_iter_dataset(options), np.int32, count=len(labels))


def train_images(config: ml_collections.ConfigDict) -> Iterator[np.ndarray]:
  """Yields every training image after the deterministic resize, in source order.

  Args:
    config: the experiment config.

  Returns:
    An iterator of uint8 [H, W, 3] images, the shorter of H and W being `load_size(config)`.
  """
  ds = _images(config, train=True).map(functools.partial(_resize, size=load_size(config)))
  return iter(ds.to_iter_dataset(grain.ReadOptions(num_threads=config.data_threads)))


def train_array(config: ml_collections.ConfigDict) -> np.ndarray:
  """The whole training split after the deterministic resize, in source order.

  Args:
    config: the experiment config.

  Returns:
    uint8 [num_train_examples, H, W, 3], the shorter of H and W being `load_size(config)`.

  Raises:
    UserError: the images do not all have one shape after the resize (a folder of mixed
      sizes), which one array needs.
  """
  images = list(train_images(config))
  shapes = {image.shape for image in images}
  if len(shapes) > 1:
    examples = ", ".join("x".join(map(str, s[:2])) for s in sorted(shapes)[:3])
    raise UserError(
        f"config.data_on_device=True needs every training image at one shape after resizing "
        f"the shorter side to {load_size(config)}; {config.dataset} gives {len(shapes)} "
        f"shapes (e.g. {examples}): use --config.data_on_device=False")
  return np.stack(images)


def eval_images(config: ml_collections.ConfigDict, num_examples: int) -> np.ndarray:
  """Returns the first images of the eval split, in order, resized and center-cropped.

  Args:
    config: the experiment config.
    num_examples: how many images to return, if the split has that many.

  Returns:
    uint8 [min(num_examples, len(split)), S, S, 3].
  """
  images = _images(config, train=False)
  n = min(num_examples, len(images))
  size = config.image_size
  ds = images[:n].map(functools.partial(_fit, size=size))
  images = list(ds.to_iter_dataset(grain.ReadOptions(num_threads=max(1, config.data_threads))))
  return np.array(images, np.uint8).reshape(n, size, size, 3)  # Also right for n == 0.


def load_size(config: ml_collections.ConfigDict) -> int:
  """The side training images are resized to before the random crop of `image_size`."""
  size = config.image_size
  return round(size * JITTER_SCALE) if config.random_jitter else size


def _fit(image: np.ndarray, rng: np.random.Generator | None = None, *, size: int,
         load_size: int | None = None) -> np.ndarray:
  """Resizes the shorter side to `load_size` and crops a `size` square.

  In training (with `rng`) the crop is random and flipped half the time (`_crop_plan`);
  otherwise `load_size` is `size` and the crop is centered.
  """
  image = _resize(image, load_size or size)
  height, width = image.shape[:2]
  if rng is None:
    top, left, flip = (height - size) // 2, (width - size) // 2, False
  else:
    top, left, flip = _crop_plan(rng, (height, width), size)
  image = image[top:top + size, left:left + size]
  return image[:, ::-1] if flip else image


def _resize(image: np.ndarray, size: int) -> np.ndarray:
  """Resizes the shorter side to `size` (the longer in proportion); unchanged if it is already."""
  height, width = image.shape[:2]
  if min(height, width) == size:
    return image
  scale = size / min(height, width)
  new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
  # Pillow's bilinear filter widens its support when shrinking, so it antialiases.
  return np.asarray(Image.fromarray(image).resize(new_size, Image.Resampling.BILINEAR))


def _crop_plan(rng: np.random.Generator, shape: tuple[int, int],
               size: int) -> tuple[int, int, bool]:
  """A random `size` crop of an image of `shape` (height, width): (top, left, flip)."""
  top, left = rng.integers([shape[0] - size + 1, shape[1] - size + 1])
  return int(top), int(left), bool(rng.random() < 0.5)


def _images(config: ml_collections.ConfigDict, *, train: bool) -> grain.MapDataset:
  """Returns the HxWx3 uint8 images of the train or eval split, lazily, by index."""
  split = config.train_split if train else config.eval_split
  if config.dataset == "shapes":
    return shapes.dataset(split, config.image_size).map(lambda image_and_kind: image_and_kind[0])
  if config.dataset.startswith("folder:"):
    files = _folder_split(config.dataset[len("folder:"):], train)
    return grain.MapDataset.source(_FolderImages(files, size=config.image_size))
  return grain.MapDataset.source(_tfds_source(config, split)).map(_tfds_image)


def _tfds_source(config: ml_collections.ConfigDict, split: str, decoders=None):
  """Opens `split` of the tfds dataset, which must be prepared in data_dir (tfds' `decoders`)."""
  name = config.dataset
  data_dir = os.path.expanduser(config.data_dir) if config.data_dir else None
  try:
    builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
  except tfds.core.DatasetNotFoundError as e:
    raise UserError(f"unknown dataset config.dataset={name!r} ({first_line(e)}); "
                    f"{_ACCEPTED}") from None
  except ValueError as e:  # E.g. prepared as tfrecord: data_source needs array_record.
    raise UserError(f"tfds cannot open {name!r} in data_dir={data_dir!r}: {first_line(e)}; "
                    f"prepare it with `tfds build {name} --file_format=array_record`") from None
  except Exception as e:  # pylint: disable=broad-exception-caught
    # E.g. a garbled dataset_info.json (protobuf's ParseError).
    raise UserError(_damaged(name, data_dir, e)) from None
  if not builder.is_prepared():
    # tfds retries a failed download for minutes and has no public setting to shorten that,
    # so the trainer never downloads: preparing is one command that the user runs and watches.
    build = f"tfds build {name} --file_format=array_record"
    raise UserError(
        f"{name!r} is not prepared in data_dir={data_dir or '(tfds default)'!r}: prepare it "
        f"once with `{build}{f' --data_dir={data_dir}' if data_dir else ''}` (it downloads "
        "the data), point --config.data_dir at a directory where tfds prepared it, or use "
        "--config.dataset=folder:/path/to/images")
  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False,
                              decoders=decoders)
  except ValueError as e:  # An unknown split.
    raise UserError(f"{name!r}: {first_line(e)} (config.train_split / config.eval_split)"
                    ) from None
  if not len(source):  # pylint: disable=g-explicit-length-test
    raise UserError(f"split {split!r} of {name!r} is empty (config.train_split / "
                    "config.eval_split)")
  # One record of every file, read now: a truncated file fails here, with one line, rather
  # than in a reader thread in the middle of training.
  try:
    takes = [f.take for f in source.dataset_info.splits[source.split].file_instructions]
  except KeyError:  # tfds.testing's mock sources have no files, hence no split info.
    takes = [len(source)]
  firsts = [int(start) for start, take in zip(np.cumsum([0] + takes), takes) if take > 0]
  try:
    for index in firsts:
      source[index]  # pylint: disable=pointless-statement
  except Exception as e:  # pylint: disable=broad-exception-caught
    raise UserError(_damaged(name, data_dir, e)) from None
  return source


def _damaged(name: str, data_dir: str | None, error: Exception) -> str:
  return (f"tfds cannot read {name!r} in data_dir={data_dir or '(tfds default)'!r} "
          f"({type(error).__name__}: {first_line(error)}); a file there is damaged or "
          f"truncated: prepare it again (`tfds build {name} --file_format=array_record`) or "
          "copy it again")


def _tfds_image(example: dict[str, np.ndarray]) -> np.ndarray:
  image = example["image"]
  if image.shape[-1] == 1:  # Grayscale datasets (mnist) store one channel.
    image = np.repeat(image, 3, axis=-1)
  return image[..., :3]


def _folder_split(path: str, train: bool) -> list[str]:
  """Returns the sorted image files of the train or eval split of the folder `path`."""
  files = image_files.list_images(os.path.expanduser(path))
  if not files:
    raise UserError(f"no image files ({', '.join(image_files.EXTENSIONS)}) under {path!r} "
                    "(config.dataset=folder:...); is the path right?")
  if len(files) < 10:
    logging.info("%s has only %d images: train and eval both use all of them.", path, len(files))
    return files
  return [f for i, f in enumerate(files) if (i % 10 == 0) != train]


class _FolderImages:
  """Image files decoded with Pillow; a file that fails is replaced by the next one that works.

  Replacing (rather than dropping) keeps the length, hence the batch shapes and the data
  order, fixed and independent of which files happen to be broken.
  """

  def __init__(self, files: list[str], size: int):
    self._files = files
    self._size = size
    self._bad = set()  # Files known not to decode: each is warned about once.
    self._lock = threading.Lock()  # Reader threads share `_bad`.
    self.__getitem__(0)  # Fails now, in the caller's thread, if no file decodes at all.

  def __len__(self) -> int:
    return len(self._files)

  def __getitem__(self, index: int) -> np.ndarray:
    for offset in range(len(self._files)):
      path = self._files[(index + offset) % len(self._files)]
      if path in self._bad:
        continue
      try:
        return self._decode(path)
      # Pillow's plugins raise many types for broken files (OSError, SyntaxError, struct.error).
      except Exception as e:  # pylint: disable=broad-exception-caught
        with self._lock:
          if path not in self._bad:
            self._bad.add(path)
            logging.warning("%s; skipped", e if isinstance(e, UserError) else
                            f"{path}: {type(e).__name__}: {e}")
    raise UserError(f"none of the {len(self._files)} image files of this split decodes "
                    f"(first: {self._files[0]})")

  def _decode(self, path: str) -> np.ndarray:
    with image_files.open_image(path) as image:
      # JPEGs decode at a reduced scale, still >= size on both sides: much faster for photos.
      image.draft("RGB", (self._size, self._size))
      ImageOps.exif_transpose(image, in_place=True)
      return image_files.to_rgb_uint8(image)
