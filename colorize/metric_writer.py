"""A run's metrics as files: TensorBoard event files and metrics.jsonl.

TensorBoard files are written with tensorboardX, a pure-Python event writer, so training
imports no TensorFlow (clu's writers do); `tensorboard --logdir` reads them as before. Only the
main process writes; on the others every method does nothing.
"""
import json

from absl import logging
from etils import epath
import numpy as np
import tensorboardX


class MetricWriter:
  """Writes scalars and images of a run in `workdir` (files on the main process only)."""

  def __init__(self, workdir: epath.Path, is_main: bool):
    self._jsonl = workdir / "metrics.jsonl" if is_main else None
    self._tensorboard = tensorboardX.SummaryWriter(str(workdir)) if is_main else None

  def write_scalars(self, step: int, scalars: dict[str, float | None],
                    jsonl: bool = True) -> None:
    """Writes `scalars` to TensorBoard and (with `jsonl`) as one line of metrics.jsonl.

    Args:
      step: the training step they belong to.
      scalars: name -> value; an undefined value (None) is written to metrics.jsonl as null
        and left out of TensorBoard.
      jsonl: also append them as one line of metrics.jsonl.
    """
    if self._tensorboard is None:
      return
    for name, value in scalars.items():
      if value is not None:
        self._tensorboard.add_scalar(name, value, step)
    if jsonl:
      with self._jsonl.open("a") as f:
        f.write(json.dumps({"step": step, **scalars}) + "\n")

  def write_image(self, step: int, name: str, image: np.ndarray) -> None:
    """Writes a uint8 [H, W, 3] image to TensorBoard."""
    if self._tensorboard is not None:
      self._tensorboard.add_image(name, image, step, dataformats="HWC")

  def flush(self) -> None:
    """Writes out the buffered events; a full disk is logged, not raised.

    (Called while another error, e.g. a checkpoint that did not fit, may be on its way out:
    that one names the problem and the intact checkpoints.)
    """
    if self._tensorboard is not None:
      try:
        self._tensorboard.flush()
      except OSError as e:
        logging.warning("TensorBoard events not written to disk: %s", e)

  def close(self) -> None:
    if self._tensorboard is not None:
      self._tensorboard.close()
