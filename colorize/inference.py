"""Colorizing a user's images at any size: `Colorizer.from_workdir(workdir)(image)`.

The generator runs at its training resolution (or, `native=True`, fully convolutionally on the
image padded to a multiple of its stride). Only its chroma is kept: the predicted ab is
upsampled to the image's full size and recombined with the image's own full-resolution CIE
lightness, so edges and detail come from the original and the output's L is the input's.

Where values live: images are uint8 / uint16 / float in [0, 1], HxW (gray), HxWx2 (gray +
alpha), HxWx3 (RGB) or HxWx4 (RGBA); L in [0, 100]; ab in Lab units (about +-110). Every
colour conversion is `colorize.color`'s, run over flat pixels in fixed-size chunks so that a
40-megapixel photo never materialises more than one chunk of float temporaries at a time.

A workdir's config and checkpoint are read by `colorize.restore`; the flags the commands share,
and the checks of their values, are in `colorize.shared_flags`.
"""
import copy
import dataclasses
import functools
import itertools
import os
from typing import Sequence

from absl import logging as absl_logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from PIL import Image

from colorize import atomic
from colorize import batches
from colorize import color
from colorize import image_files
from colorize import models
from colorize import restore
from colorize import shared_flags
from colorize import transport as transport_lib
from colorize.errors import UserError

DEFAULT_BATCH_SIZE = 16
# --batch_size's ceiling in the commands: every model call is padded to the batch size, so a
# larger one only costs memory and time (10**12 would ask for terabytes).
MAX_BATCH_SIZE = 1024
# Pixels per call of the colour conversions: float temporaries stay at a few MB, and images
# smaller than this round up to a power of two, so a handful of compiled shapes serve any size.
_MAX_CHUNK = 1 << 18
_MIN_CHUNK = 1 << 10
# Training images whose predicted and true colours fit a run's colour transport: two million
# pixels at 32x32, against the map's 1001 quantiles per axis.
TRANSPORT_IMAGES = 2048
# At most this many of their pixels (every pixel at 32x32; a fixed random sample of each image
# at larger sizes), so that the fit's memory does not grow with the training size; the images
# are read and colorized this many at a time.
_TRANSPORT_PIXELS = 1 << 21
_TRANSPORT_CHUNK = 256

ColorArray = np.ndarray  # uint8 | uint16 | float32 [H, W, C], C in {1, 3}: an image without alpha.


def _split_alpha(image: np.ndarray | Image.Image) -> tuple[ColorArray, np.ndarray | None]:
  """Validates an image and returns (pixels [H, W, 1|3], alpha uint8 [H, W] or None)."""
  if isinstance(image, Image.Image):
    image = image_files.to_array(image)
  image = np.asarray(image)
  if image.ndim == 2:
    image = image[..., None]
  if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4) or 0 in image.shape:
    raise ValueError(f"expected an image [H, W] or [H, W, 1|2|3|4], got shape {image.shape}")
  if image.dtype == bool:
    image = image.astype(np.uint8) * 255
  elif np.issubdtype(image.dtype, np.floating):
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
  elif image.dtype not in (np.uint8, np.uint16):
    raise ValueError(f"expected uint8, uint16 or float in [0, 1], got dtype {image.dtype}")
  if image.shape[-1] in (2, 4):
    return image[..., :-1], image_files.to_uint8(image[..., -1])
  return image, None


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
  """Resizes uint8 [H, W] or [H, W, 3], or float32 [H, W], with Pillow's bilinear filter.

  Shrinking, the filter's support widens with the scale (it averages every pixel it covers),
  so downsampling is antialiased, like the training pipeline's resize.
  """
  if image.shape[:2] == (height, width):
    return image
  return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def _model_input(pixels: ColorArray, size: int) -> np.ndarray:
  """uint8 RGB [size, size, 3]: the image squeezed to the model's square training size."""
  pixels = image_files.to_uint8(pixels)
  if pixels.shape[-1] == 1:  # Resized before the gray is repeated: a third of the work.
    return np.repeat(_resize(pixels[..., 0], size, size)[..., None], 3, axis=-1)
  return _resize(pixels, size, size)


@jax.jit
def _lightness_fn(pixels_NC: jax.Array) -> jax.Array:
  """L in [0, 100] of gray (C = 1) or RGB (C = 3) pixels, uint8 / uint16 / float in [0, 1]."""
  scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(pixels_NC.dtype.type, 1.0)
  rgb = jnp.broadcast_to(pixels_NC.astype(jnp.float32) / scale, pixels_NC.shape[:1] + (3,))
  return color.rgb_to_lab(rgb)[:, 0]


@jax.jit
def _recombine_fn(l_N: jax.Array, ab_N2: jax.Array) -> jax.Array:
  """(L, ab) -> uint8 sRGB [N, 3]; out-of-gamut colours lose chroma, never lightness."""
  rgb = color.lab_to_rgb_in_gamut(jnp.concatenate([l_N[:, None], ab_N2], axis=-1))
  return jnp.round(rgb * 255.0).astype(jnp.uint8)


def _map_pixels(fn, *arrays: np.ndarray) -> np.ndarray:
  """`fn` over flat pixel arrays (same length N) in chunks; returns its outputs concatenated."""
  n = len(arrays[0])
  chunk = min(_MAX_CHUNK, max(_MIN_CHUNK, 1 << (n - 1).bit_length()))
  return np.concatenate([np.asarray(fn(*parts))[:size]
                         for parts, size in batches.padded(arrays, chunk)])


@functools.partial(jax.jit, static_argnames=("module", "color_space", "flip_average"))
def _predict_ab(module: models.UNetGenerator, variables, images_BHW3: jax.Array,
                color_space: str, flip_average: bool = False) -> jax.Array:
  """The generator's colour as Lab ab [B, H, W, 2] (inference mode: running averages).

  Both colour spaces go through the decoded sRGB, so "lab" and "rgb" runs give ab the same
  way (a "lab" prediction outside the sRGB gamut is brought to its edge, as the output
  would be anyway). The module's depth is fixed by the training size, so a larger (native)
  input runs through the same network fully convolutionally. With `flip_average`, the mean
  of the ab of the images and of their mirror images, mirrored back (one call of twice the
  batch: inference's batch norm uses running averages, so the halves do not interact).
  """
  if flip_average:
    return models.mirror_mean(_predict_ab(module, variables, models.mirror_views(images_BHW3),
                                          color_space))
  cond, _ = color.encode(images_BHW3, color_space)
  prediction = module.apply(variables, cond, train=False)
  return color.rgb_to_lab(color.decode(cond, prediction, color_space))[..., 1:]


@functools.partial(jax.jit, static_argnames=("module", "color_space"))
def _predict_class(module: models.UNetGenerator, variables, images_BHW3: jax.Array,
                   color_space: str) -> jax.Array:
  """The class [B] (int) that the generator's own classifier (model.num_classes) predicts."""
  cond, _ = color.encode(images_BHW3, color_space)
  _, sown = module.apply(variables, cond, train=False, mutable=["intermediates"])
  return jnp.argmax(sown["intermediates"]["class_logits"][0], axis=-1)


class Colorizer:
  """Colorizes images of any size with a trained generator.

      c = Colorizer.from_workdir("runs/cifar10")
      rgb_HW3_uint8 = c(gray_or_rgb_image_array)

  Colour inputs are reduced to their lightness first, so recolouring works.
  """

  def __init__(self, generator: restore.Generator, *, batch_size: int = DEFAULT_BATCH_SIZE,
               native: bool = False, chroma_gain: float = 1.0,
               temperature: float | None = None, flip_average: bool = False,
               transport: transport_lib.Transport | None = None,
               transport_strength: float = 0.0):
    """Wraps a restored generator.

    Args:
      generator: see `restore.restore_generator`.
      batch_size: images per model call at the training resolution; fewer are padded, so the
        model compiles once.
      native: run the model on the whole image (padded to a multiple of the U-Net's stride,
        compiled once per padded size) instead of at the training resolution.
      chroma_gain: multiplies the predicted ab, so chroma, at the same hue and lightness:
        above 1 more vivid, below 1 more muted (a colour pushed out of gamut loses chroma at
        its L, as always). What it trades in accuracy is measured in docs/results.md.
      temperature: for a classification head, the annealed mean's temperature instead of
        the run's (`models.UNetGenerator`); None keeps the run's.
      flip_average: average the colours predicted for each image and for its mirror image
        (mirrored back): a test-time ensemble of two views, at twice the model's work.
      transport: the colour transport of this generator's predictions, decoded as above
        (`fit_transport`); needed when transport_strength > 0. A transport by class (one
        map per class, `fit_transport(by_class=True)`) moves each image's colours by the map
        of the class that the generator's classifier predicts for it.
      transport_strength: move each colour this far (0..1) from chroma_gain times the
        prediction towards where the transport maps the prediction (`transport.apply`).

    Raises:
      ValueError: a negative or non-finite chroma_gain, a temperature that is not a finite
        number > 0, a transport_strength outside [0, 1] or one without a transport, or a
        transport by class whose classes are not the generator's.
      UserError: a temperature for a generator without a classification head.
    """
    self.chroma_gain = shared_flags.check_chroma_gain(chroma_gain)
    self.transport_strength = shared_flags.check_transport(transport_strength)
    if self.transport_strength and transport is None:
      raise ValueError(f"transport_strength={transport_strength} needs a transport "
                       "(fit_transport)")
    if transport is not None and transport.num_groups not in (0, generator.module.num_classes):
      raise ValueError(f"a colour transport by {transport.num_groups} classes for a generator "
                       f"that predicts {generator.module.num_classes}")
    self.transport = transport
    if temperature is not None:
      if generator.module.head != "classification":
        raise UserError(f"a temperature ({temperature:g}) applies to a classification head "
                        "(model.head='classification'); this run's generator regresses its "
                        "colours: leave it out")
      temperature = shared_flags.check_temperature(temperature)
      generator = dataclasses.replace(
          generator, module=generator.module.clone(temperature=temperature))
    self.generator = generator
    self.batch_size = batch_size
    self.native = native
    self.flip_average = flip_average
    self._depth = generator.module.depth or models.unet_depth(generator.image_size)

  @classmethod
  def from_workdir(cls, workdir: str, step: int | None = None, **kwargs) -> "Colorizer":
    """Restores the latest (or `step`) checkpoint of a training workdir.

    Args:
      workdir: a training workdir.
      step: the checkpoint's step; the latest when None.
      **kwargs: `batch_size`, `native`, `chroma_gain`, `temperature`, `flip_average`,
        `transport_strength` (see `__init__`; the transport is the run's, `run_transport`),
        `transport_by_class` (see `run_transport`).

    Returns:
      A Colorizer.

    Raises:
      UserError: see `restore.restore_generator`, and a temperature for a run without a
        classification head (naming the workdir).
    """
    generator = restore.restore_generator(workdir, step)
    strength = kwargs.pop("transport_strength", 0.0)
    by_class = kwargs.pop("transport_by_class", False)
    try:
      colorizer = cls(generator, **kwargs)
    except UserError as e:
      raise UserError(f"{workdir}: {e}") from None
    return with_run_transport(colorizer, workdir, restore.read_config(workdir), strength,
                              by_class)

  def __call__(self, image: np.ndarray | Image.Image) -> np.ndarray:
    """Colorizes one image; see `colorize_batch`."""
    return self.colorize_batch([image])[0]

  def colorize_batch(self, images: Sequence[np.ndarray | Image.Image]) -> list[np.ndarray]:
    """Colorizes images of any sizes and modes.

    Args:
      images: arrays [H, W] or [H, W, C] (C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA),
        uint8, uint16 or float in [0, 1]; or Pillow images.

    Returns:
      uint8 [H, W, 3] per image ([H, W, 4] with the input's alpha), the size of its input.
    """
    split = [_split_alpha(image) for image in images]
    if self.native:
      abs_hw2 = [self._native_ab(pixels) for pixels, _ in split]
    else:
      abs_hw2 = self._small_ab([pixels for pixels, _ in split])
    classes = [None] * len(split)
    if self.transport_strength and self.transport.num_groups:
      classes = self._small_classes([pixels for pixels, _ in split])
    # One image at a time from here: only one full-size ab and L are held at once.
    return [_recombine(pixels, self._decoded(ab, image_class), alpha)
            for (pixels, alpha), ab, image_class in zip(split, abs_hw2, classes)]

  def _decoded(self, ab: np.ndarray, image_class: int | None = None) -> np.ndarray:
    """The predicted ab with the chroma gain and the colour transport (by class: the image's
    predicted class's map) applied."""
    if not self.transport_strength:
      return ab * np.float32(self.chroma_gain)
    # In chunks, as the colour conversions run: a native-size ab of a large photo would
    # otherwise hold several float64 copies of itself at once.
    flat = ab.reshape(-1, 2)
    return np.concatenate([
        transport_lib.apply(self.transport, flat[i:i + _MAX_CHUNK], self.transport_strength,
                            self.chroma_gain, image_class)
        for i in range(0, len(flat), _MAX_CHUNK)]).reshape(ab.shape)

  def predict_ab(self, images_BSS3: np.ndarray) -> np.ndarray:
    """The model alone: ab [B, S, S, 2] of uint8 RGB images at the training resolution."""
    g = self.generator
    return np.asarray(_predict_ab(g.module, g.variables, images_BSS3, g.color_space,
                                  self.flip_average))

  def predict_classes(self, images_BSS3: np.ndarray) -> np.ndarray:
    """The generator's own classifier: the class [B] of uint8 RGB images at the training
    resolution (a run with model.num_classes > 0, else UserError)."""
    g = self.generator
    if not g.module.num_classes:
      raise UserError("this run's generator predicts no class (model.num_classes = 0)")
    return np.asarray(_predict_class(g.module, g.variables, images_BSS3, g.color_space))

  def _small_ab(self, pixel_arrays: list[ColorArray]) -> list[np.ndarray]:
    """ab [S, S, 2] of each image, resized to the training size S, in fixed-size batches."""
    return self._at_training_size(self.predict_ab, pixel_arrays)

  def _small_classes(self, pixel_arrays: list[ColorArray]) -> list[int]:
    """The predicted class of each image, resized to the training size, as colorizing does."""
    return [int(c) for c in self._at_training_size(self.predict_classes, pixel_arrays)]

  def _at_training_size(self, predict, pixel_arrays: list[ColorArray]) -> list[np.ndarray]:
    """`predict` of each image resized to the training size S, in fixed-size batches."""
    size = self.generator.image_size
    small = np.stack([_model_input(pixels, size) for pixels in pixel_arrays])
    return [y for (batch,), n in batches.padded([small], self.batch_size)
            for y in predict(batch)[:n]]

  def _native_ab(self, pixels: ColorArray) -> np.ndarray:
    """ab of the whole image: reflect-padded to a multiple of the stride, then cropped.

    With `flip_average` the mirror image is padded on its own right, as the image is (not
    mirrored after padding, which would pad it on the left), so that the average of a mirror
    image is the mirrored average.
    """
    height, width = pixels.shape[:2]
    stride = 2**self._depth
    pad = [(0, -height % stride), (0, -width % stride), (0, 0)]
    views = image_files.to_rgb_uint8(pixels)[None]
    if self.flip_average:
      views = np.asarray(models.mirror_views(views))
    g = self.generator
    ab = _predict_ab(g.module, g.variables, np.pad(views, [(0, 0)] + pad, mode="reflect"),
                     g.color_space)[:, :height, :width]
    return np.asarray(models.mirror_mean(ab) if self.flip_average else ab)[0]


@jax.jit
def _ab_fn(rgb_N3: jax.Array) -> jax.Array:
  """Lab ab of uint8 sRGB pixels [N, 3]."""
  return color.rgb_to_lab(rgb_N3.astype(jnp.float32) / 255.0)[:, 1:]


def fit_transport(colorizer: Colorizer, config: ml_collections.ConfigDict,
                  num_images: int = TRANSPORT_IMAGES,
                  by_class: bool = False) -> transport_lib.Transport:
  """Fits the colour transport of `colorizer`'s predictions on the run's training split.

  Args:
    colorizer: the run's generator, decoded as it will be used (flip average, temperature;
      the chroma gain does not matter, `transport.apply`).
    config: the run's config (`restore.read_config`), which names its data.
    num_images: the first this many training images, each squeezed to the training size as
      colorizing does (at most _TRANSPORT_PIXELS of their pixels are used).
    by_class: one map per class, each fit on the images that the generator's classifier puts
      in that class (`transport.fit_by_group`; the generator must have one).

  Returns:
    The map from the predicted to the true ab of those images' pixels.

  Raises:
    UserError: the training split cannot be read (the message says which data is needed).
  """
  # The data stack (grain, tfds) only when a map is fit: colorizing needs neither.
  from colorize import input_pipeline  # pylint: disable=g-import-not-at-top
  size = colorizer.generator.image_size
  per_image = min(size * size, max(1, _TRANSPORT_PIXELS // num_images))
  rng = np.random.default_rng(0)
  predicted, true_rgb, classes = [], [], []
  try:
    stream = (_model_input(image, size)
              for image in itertools.islice(input_pipeline.train_images(config), num_images))
    while chunk := list(itertools.islice(stream, _TRANSPORT_CHUNK)):
      abs_hw2 = colorizer._small_ab(chunk)  # pylint: disable=protected-access
      if by_class:
        classes += colorizer._small_classes(chunk)  # pylint: disable=protected-access
      for ab, rgb in zip(abs_hw2, chunk):
        keep = rng.permutation(size * size)[:per_image]
        predicted.append(ab.reshape(-1, 2)[keep])
        true_rgb.append(rgb.reshape(-1, 3)[keep])
  except UserError as e:
    raise UserError(f"the colour transport is fit on the run's training split once: {e}"
                    ) from None
  if not predicted:
    raise UserError(f"{config.dataset} {config.train_split!r} holds no image to fit the "
                    "colour transport on")
  true = _map_pixels(_ab_fn, np.concatenate(true_rgb))
  if not by_class:
    return transport_lib.fit(np.concatenate(predicted), true)
  groups = np.concatenate([np.full(len(p), c) for p, c in zip(predicted, classes)])
  return transport_lib.fit_by_group(np.concatenate(predicted), true, groups,
                                    colorizer.generator.module.num_classes)


def run_transport(workdir: str, colorizer: Colorizer, config: ml_collections.ConfigDict,
                  by_class: bool = False) -> transport_lib.Transport:
  """The run's colour transport: read from its eval/<step>/ folder, or fit and kept there.

  Args:
    workdir: the training workdir of `colorizer`'s generator.
    colorizer: see `fit_transport`.
    config: see `fit_transport` (e.g. with another data_dir than the workdir's).
    by_class: the map by the generator's predicted class (see `fit_transport`).

  Returns:
    The transport.

  Raises:
    UserError: a kept map that is unreadable or not of the kind asked for, a training split
      that cannot be read, or `by_class` for a generator without a classifier.
  """
  g = colorizer.generator
  groups = g.module.num_classes if by_class else 0
  if by_class and not groups:
    raise UserError(f"{workdir}: a colour transport by class needs a generator that predicts "
                    "each image's class (trained with model.num_classes > 0); this run's does "
                    "not: leave out --transport_by_class")
  name = "transport" + ("-flip_average" if colorizer.flip_average else "")
  if g.module.head == "classification":
    name += f"-temperature-{g.module.temperature:g}"
  path = os.path.join(workdir, "eval", str(g.step), name + ("-by_class" if by_class else "")
                      + ".npz")
  if os.path.lexists(path):
    transport = transport_lib.load(path)  # Refuses a FIFO, which would block the read.
    if transport.num_groups != groups:
      raise UserError(f"{path}: a colour transport by {transport.num_groups or 'no'} groups, "
                      f"where this run needs {groups or 'none'}; delete it and it is fit again")
    return transport
  transport = fit_transport(colorizer, config, by_class=by_class)
  try:
    atomic.write_bytes(path, transport_lib.to_bytes(transport), inside=workdir)
  except OSError as e:  # A read-only workdir: the map is fit again next time.
    absl_logging.warning("cannot keep the colour transport in %s (%s)", path, e.strerror or e)
  return transport


def with_run_transport(colorizer: Colorizer, workdir: str, config: ml_collections.ConfigDict,
                       strength: float, by_class: bool = False) -> Colorizer:
  """`colorizer`, its colours moved `strength` along its run's transport (itself at 0).

  Args:
    colorizer: the workdir's generator, decoded as it will be used.
    workdir: its training workdir.
    config: see `fit_transport`.
    strength: see `Colorizer`'s transport_strength.
    by_class: the run's transport by predicted class (see `run_transport`).

  Returns:
    A Colorizer that differs from `colorizer` in its transport only.

  Raises:
    UserError: see `run_transport`.
  """
  if not strength:
    return colorizer
  moved = copy.copy(colorizer)
  moved.transport = run_transport(workdir, colorizer, config, by_class)
  moved.transport_strength = shared_flags.check_transport(strength)
  return moved


def _recombine(pixels: ColorArray, ab_hw2: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
  """The image's own full-resolution L with the predicted ab upsampled to it, as uint8 RGB(A)."""
  height, width, channels = pixels.shape
  # Bilinear, one float channel at a time (Pillow's mode "F").
  ab_HW2 = np.stack([_resize(np.ascontiguousarray(ab_hw2[..., i]), height, width)
                     for i in range(2)], axis=-1)
  lightness = _map_pixels(_lightness_fn, pixels.reshape(-1, channels))
  rgb = _map_pixels(_recombine_fn, lightness,
                    ab_HW2.reshape(-1, 2).astype(np.float32, copy=False))
  rgb = rgb.reshape(height, width, 3)
  return rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], axis=-1)
