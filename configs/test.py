"""A tiny model on generated data, for the tests: compiles and trains in seconds on CPU."""
import ml_collections

from configs import cifar10


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """Returns the test config; `variant` is passed to nothing (kept for a uniform signature)."""
  del variant
  c = cifar10.get_config()
  c.dataset = "shapes"
  c.train_split, c.eval_split = "train", "validation"
  c.image_size = 8
  c.batch_size = 8
  c.data_threads = 1
  c.num_train_steps = 4
  c.model.width = 4
  c.model.max_width = 8
  c.model.critic_width = 4
  c.model.critic_layers = 2
  # Tiny models are compile-bound, and the "xla" convs compile faster than "matmul"
  # (tests/conv_test.py checks the two agree).
  c.model.conv_impl = "xla"
  c.log_every_steps = 2
  c.eval_every_steps = 2
  c.eval_examples = 16
  c.checkpoint_every_steps = 2
  c.sample_epochs = ()
  c.num_samples = 4
  c.compilation_cache_dir = ""
  # The recipe's EMA recomputes batch statistics before every eval and save; tests that need
  # the EMA turn it on themselves.
  c.ema_decay = 0.0
  return c
