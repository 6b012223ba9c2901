r"""Trains a colorizer: `python -m colorize.main --config=configs/cifar10.py --workdir=runs/x`.

Any config key can be overridden: `--config.batch_size=64 --config.model.norm=instance`.
Mistakes a user can fix (bad config values, missing data) end with one line, not a traceback.
"""
from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from colorize import train
from colorize.errors import UserError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file(
    "config", None, "Training config file, e.g. configs/cifar10.py[:variant].",
    lock_config=True)
flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, samples and plots.")
flags.mark_flags_as_required(["config", "workdir"])


def _not_orbax_info(record) -> bool:
  # Orbax logs a dozen INFO lines per checkpoint; keep its warnings, drop the chatter.
  return record.levelno > logging.INFO or "/orbax/" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_not_orbax_info)
  logging.info("JAX process %d/%d, devices: %s", jax.process_index(), jax.process_count(),
               jax.devices())
  try:
    train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except (UserError, FloatingPointError) as e:
    raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
  app.run(main)
