"""The flags that `colorize` and `colorize.evaluate` share, and the checks of their values.

How the colours are decoded (`--chroma_gain`, `--temperature`, `--flip_average`,
`--transport`, `--transport_by_class`; `inference.Colorizer` checks its arguments with the
same functions) and where compiled programs are kept (`--compilation_cache_dir`, the user's
choice, never a workdir's).
"""
import argparse
import os

import jax

from colorize import validation


def _add_compilation_cache_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--compilation_cache_dir` (see `use_compilation_cache`) to a command's flags."""
  parser.add_argument(
      "--compilation_cache_dir",
      help="Persistent compilation cache: compiled programs are stored here and reused by "
           "later commands ('' for none). Default: $JAX_COMPILATION_CACHE_DIR, else "
           f"{validation.reference().compilation_cache_dir}. Never taken from the workdir.")


def _number(value, ok, problem: str) -> float:
  """`value` as a float if `ok(float)`, else ValueError(problem); text that is no number fails."""
  try:
    number = float(value)
  except (TypeError, ValueError):
    number = float("nan")  # Fails every range check.
  if not ok(number):
    raise ValueError(problem)
  return number


def check_chroma_gain(value) -> float:
  """`value` (a number or its text) as a chroma gain (see `Colorizer`).

  Args:
    value: the gain, e.g. 1.2 or "1.2".

  Returns:
    The gain as a float.

  Raises:
    ValueError: not a finite number >= 0; the message says what to give.
  """
  return _number(value, lambda gain: 0 <= gain < float("inf"),
                 f"chroma_gain {value!r}: give a finite number >= 0 (1 keeps the model's colours)")


def _flag_type(check):
  """`check` as an argparse type: the message of its ValueError becomes the flag's error."""
  def parse(text: str) -> float:
    try:
      return check(text)
    except ValueError as e:  # argparse shows only this error type's own message.
      raise argparse.ArgumentTypeError(str(e)) from None
  return parse


def _add_chroma_gain_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--chroma_gain` (see `Colorizer`) to a command's flags."""
  parser.add_argument(
      "--chroma_gain", type=_flag_type(check_chroma_gain), default=1.0,
      help="Multiply the predicted chroma (ab) by this, at the same hue and lightness: above "
           "1 more vivid, below 1 more muted. 1 (default): the model's own colours.")


def check_temperature(value) -> float:
  """`value` (a number or its text) as an annealed-mean temperature (see `Colorizer`).

  Args:
    value: the temperature, e.g. 0.2 or "0.2".

  Returns:
    The temperature as a float.

  Raises:
    ValueError: not a finite number > 0; the message says what to give.
  """
  return _number(value, lambda t: 0 < t < float("inf"),
                 f"temperature {value!r}: give a finite number > 0 (1: the mean of the "
                 "predicted distribution; lower is more vivid)")


def _add_temperature_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--temperature` (see `Colorizer`) to a command's flags."""
  parser.add_argument(
      "--temperature", type=_flag_type(check_temperature),
      help="For a run with a classification head (model.head=classification): decode its "
           "distribution over colours by the annealed mean at this temperature instead of "
           "the run's model.temperature (lower: nearer the most likely colour, more vivid).")


def _add_flip_average_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--flip_average` (see `Colorizer`) to a command's flags."""
  parser.add_argument(
      "--flip_average", action="store_true",
      help="Average the colours predicted for each image and for its mirror image (a "
           "test-time ensemble of two views; twice the model's work).")


def check_transport(value) -> float:
  """`value` (a number or its text) as a colour transport's strength (see `Colorizer`).

  Raises:
    ValueError: not a number in [0, 1]; the message says what to give.
  """
  return _number(value, lambda s: 0 <= s <= 1,
                 f"transport {value!r}: give a number from 0 (the model's colours) to 1 (moved "
                 "all the way to the training split's distribution)")


def _add_transport_flag(parser: argparse.ArgumentParser) -> None:
  """Adds `--transport` (see `Colorizer`) to a command's flags."""
  parser.add_argument(
      "--transport", type=_flag_type(check_transport), default=0.0,
      help="Move the predicted colours this far (0..1) towards the true colours' distribution "
           "of the run's training split (colorize/transport.py), starting from --chroma_gain "
           "times them. The map is fit once per checkpoint, from the training split, and kept "
           "in <workdir>/eval/<step>/. 0 (default): no move.")
  parser.add_argument(
      "--transport_by_class", action="store_true",
      help="With --transport: one map per class, each image's colours moved by the map of the "
           "class that the run's generator predicts for it (a run trained with "
           "model.num_classes > 0; no labels are needed to colorize).")


def add_decoding_flags(parser: argparse.ArgumentParser) -> None:
  """Adds the flags that `colorize` and `colorize.evaluate` share to a command's flags.

  `--chroma_gain`, `--temperature`, `--flip_average`, `--transport` and
  `--transport_by_class` (how the colours are decoded, see `Colorizer`) and
  `--compilation_cache_dir` (see `use_compilation_cache`).
  """
  for add in (_add_chroma_gain_flag, _add_temperature_flag, _add_flip_average_flag,
              _add_transport_flag, _add_compilation_cache_flag):
    add(parser)


def use_compilation_cache(directory: str | None) -> None:
  """Points JAX's persistent compilation cache where the user says.

  A cache holds executables that are loaded and run, so only the user chooses it: the
  flag, else JAX's own JAX_COMPILATION_CACHE_DIR (already applied by JAX), else
  the training configs' default, so colorizing reuses what training compiled. Never a
  workdir's config.json.

  Args:
    directory: the `--compilation_cache_dir` value: a folder, "" for no cache, or None.
  """
  if directory is None:
    if jax.config.jax_compilation_cache_dir:
      return
    directory = validation.reference().compilation_cache_dir
  jax.config.update("jax_compilation_cache_dir", os.path.expanduser(directory) or None)
