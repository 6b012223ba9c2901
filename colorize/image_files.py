"""Image files: which ones a folder holds, how one is opened or written, its pixels as an array.

One place for the `colorize` command, the folder dataset (`input_pipeline`), `evaluate` and
the trainer's sample grids (`save_image`):

* `list_images`: the regular files under a folder whose names end in `EXTENSIONS`, sorted by
  path (the folder dataset's eval split is every 10th of them). A FIFO, socket or device
  named `x.png` is skipped: opening one would block or read forever.
* `open_image`: decodes only `FORMATS`, the formats the README documents, whatever the
  file's name says. Pillow would otherwise pick a decoder from the bytes, among them EPS,
  which it hands to Ghostscript: an image from someone else must not reach that.
* `to_array`: every Pillow mode to uint8, uint16 or float in [0, 1], each in its documented
  range: 16-bit gray keeps its 16 bits, a float ("F") image must lie in [0, 1], a 32-bit
  integer TIFF spans its type's range; a file outside its range is refused with the reason,
  never shown nearly black or white.
"""
import io
import os
import stat

import numpy as np
from PIL import Image

from colorize import atomic
from colorize.errors import UserError

# The image files read and written: extension -> Pillow's format name. A format's first
# extension is the one `colorize --format` writes.
EXTENSION_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".tif": "TIFF",
                     ".tiff": "TIFF", ".bmp": "BMP", ".webp": "WEBP"}
EXTENSIONS = tuple(EXTENSION_FORMATS)
FORMATS = tuple(dict.fromkeys(EXTENSION_FORMATS.values()))  # Nothing else is decoded.
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_GRAY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_TIFF_BITS, _TIFF_SAMPLE_FORMAT = 258, 339  # TIFF tags; SampleFormat 1 = unsigned, 2 = signed.
# PNG's zlib level 1 encodes several times faster than Pillow's default 6 for a slightly larger
# file: encoding would otherwise dominate the `colorize` command (docs/colorize.md has timings).
_SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "PNG": {"compress_level": 1}}


def is_regular_file(path: str) -> bool:
  """Whether `path` is (or links to) a regular file: not a folder, FIFO, socket or device."""
  try:
    return stat.S_ISREG(os.stat(path).st_mode)
  except OSError:
    return False


def list_images(folder: str, skip: str | None = None) -> list[str]:
  """The image files under `folder`, recursively, sorted by path.

  Args:
    folder: the folder to search (links to sub-folders are not followed).
    skip: a folder under `folder` to leave out (e.g. an output folder inside the input).

  Returns:
    Paths (`folder` joined with each file's relative path) of regular files whose names end
    in one of `EXTENSIONS`, in any case.
  """
  skip = os.path.realpath(skip) if skip else None
  files = []
  for root, dirs, names in os.walk(folder):
    dirs[:] = [d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip]
    files.extend(os.path.join(root, name) for name in names
                 if name.lower().endswith(EXTENSIONS)
                 and is_regular_file(os.path.join(root, name)))
  return sorted(files)


def open_image(path: str) -> Image.Image:
  """Opens an image file (lazily, as `Image.open`) if it is a regular file in `FORMATS`.

  Args:
    path: the file.

  Returns:
    The Pillow image; use it in a `with` block.

  Raises:
    UserError: "<path>: <reason>" for anything else (a FIFO, a folder, another format).
  """
  if not is_regular_file(path):
    raise UserError(f"{path}: not a regular file (a folder, FIFO, socket or device)")
  try:
    return Image.open(path, formats=FORMATS)
  except Image.UnidentifiedImageError:
    raise UserError(f"{path}: not an image in a format read here (JPEG, PNG, TIFF, BMP, WebP)"
                    ) from None


def _tag(image: Image.Image, tag: int, default: int) -> int:
  value = getattr(image, "tag_v2", {}).get(tag, default)
  return value[0] if isinstance(value, tuple) else value


def _int32_to_unit(image: Image.Image) -> np.ndarray:
  """A 32-bit integer ("I") TIFF as float32 [H, W, 1] in [0, 1], over its type's range."""
  pixels = np.asarray(image)
  if _tag(image, _TIFF_SAMPLE_FORMAT, 1) == 1:  # Unsigned: Pillow stores it as int32 bits.
    return (pixels.view(np.uint32) / np.float64(2**32 - 1)).astype(np.float32)[..., None]
  if pixels.min() < 0:
    raise ValueError(f"signed 32-bit pixels down to {pixels.min()}: negative values have no "
                     "gray level; save it as 8- or 16-bit")
  return (pixels / np.float64(2**31 - 1)).astype(np.float32)[..., None]


def to_array(image: Image.Image) -> np.ndarray:
  """A decoded Pillow image as an array `inference.Colorizer` takes.

  Args:
    image: any mode.

  Returns:
    [H, W, C], C = 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA: uint16 for 16-bit gray, float32
    in [0, 1] for float and 32-bit integer gray, else uint8. Palette, CMYK and other modes
    come back as RGB(A).

  Raises:
    ValueError: a float image with values outside [0, 1] (or NaN), or a signed 32-bit one
      with negative values: no documented range to map them from.
  """
  if image.mode in _GRAY16_MODES:
    return np.asarray(image).astype(np.uint16)[..., None]
  if image.mode == "F":
    pixels = np.asarray(image, np.float32)
    low, high = float(np.min(pixels)), float(np.max(pixels))
    if not 0.0 <= low <= high <= 1.0:  # (False for NaN too.)
      raise ValueError(f"float pixels in [{low:g}, {high:g}]: float images must lie in "
                       "[0, 1]; rescale it, or save it as 8- or 16-bit")
    return pixels[..., None]
  if image.mode == "I":
    if image.format == "TIFF" and _tag(image, _TIFF_BITS, 32) == 32:
      return _int32_to_unit(image)
    # Other "I" images (PNG, 16-bit TIFF) hold 16-bit values.
    return np.clip(np.asarray(image), 0, 65535).astype(np.uint16)[..., None]
  has_alpha = image.mode in _ALPHA_MODES or (image.mode == "P" and "transparency" in image.info)
  if image.mode in ("1", "L", "LA", "La"):
    mode = "LA" if has_alpha else "L"
  else:  # RGB, palette, CMYK, YCbCr, LAB, HSV, ...: Pillow converts them to sRGB.
    mode = "RGBA" if has_alpha else "RGB"
  array = np.asarray(image.convert(mode))
  return array[..., None] if array.ndim == 2 else array


def to_uint8(pixels: np.ndarray) -> np.ndarray:
  """uint16 or float pixels (clipped to [0, 1]) as uint8, rounded; uint8 passes through."""
  if pixels.dtype == np.uint16:
    return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
  if np.issubdtype(pixels.dtype, np.floating):
    pixels = np.clip(pixels.astype(np.float32, copy=False), 0.0, 1.0)
    return np.round(pixels * 255.0).astype(np.uint8)
  return pixels


def to_rgb_uint8(image: Image.Image | np.ndarray) -> np.ndarray:
  """A decoded Pillow image as uint8 RGB [H, W, 3] (alpha dropped, gray repeated).

  Args:
    image: any mode `to_array` takes, or an array of the form it returns.

  Returns:
    The training and evaluation images' form (what the model sees).

  Raises:
    ValueError: see `to_array`.
  """
  array = to_array(image) if isinstance(image, Image.Image) else image
  if array.shape[-1] in (2, 4):
    array = array[..., :-1]
  array = to_uint8(array)
  return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array


def save_image(image: np.ndarray, path: str | os.PathLike,
               inside: str | os.PathLike | None = None) -> None:
  """Writes uint8 RGB(A) to `path` with `atomic.write_bytes` (whole or not at all).

  Args:
    image: uint8 [H, W, 3 or 4]; the alpha is dropped for JPEG, which has none.
    path: the output file, local or gs://...; its extension picks the format (PNG when
      unknown). Its folder is created.
    inside: if given, the folder `path` must stay in (e.g. the workdir).
  """
  name = EXTENSION_FORMATS.get(os.path.splitext(path)[1].lower(), "PNG")
  if name == "JPEG" and image.shape[-1] == 4:
    image = image[..., :3]
  buffer = io.BytesIO()
  Image.fromarray(image).save(buffer, format=name, **_SAVE_OPTIONS.get(name, {}))
  atomic.write_bytes(path, buffer.getvalue(), inside)
