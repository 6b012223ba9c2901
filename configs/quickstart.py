r"""Quickstart: a small colorizer trained on generated images, offline, on a CPU.

    python -m colorize.main --config=configs/quickstart.py --workdir=runs/quickstart

Needs no download: the "shapes" dataset is drawn on the fly (colours follow the shapes, so
there is something to learn). Writes every artifact a full run writes: checkpoints,
TensorBoard events, metrics.jsonl, config.json, samples/*.png and plots/*.png. The README gives
its measured wall time.
"""
import ml_collections

from configs import cifar10


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """Returns the quickstart config; `variant` is unused."""
  del variant
  c = cifar10.get_config()
  c.dataset = "shapes"
  c.train_split, c.eval_split = "train", "validation"
  c.image_size = 32
  c.batch_size = 32
  c.num_epochs = 8
  c.model.width = 16
  c.model.max_width = 64
  c.model.critic_width = 16
  c.log_every_steps = 20
  c.eval_every_steps = c.checkpoint_every_steps = 256
  c.eval_examples = 256
  c.sample_epochs = (1, 4, 8)
  # An EMA's horizon (1 / (1 - decay) = 1,000 steps at 0.999) is longer than this whole run.
  c.ema_decay = 0.0
  return c
