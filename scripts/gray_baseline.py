r"""The trivial "gray" baseline (ab = 0) on a config's eval images, in the trainer's eval metrics.

    python scripts/gray_baseline.py --config=configs/cifar10.py:subset

Prints the `eval_l1` and `eval_psnr` that a model predicting no colour at all would log, for
the same `eval_examples` images the trainer evaluates on, so a run's numbers can be read
against it. (The evaluation command of issue 4 will report this and other baselines.)
"""
import json
import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from colorize import color  # pylint: disable=g-import-not-at-top
from colorize import input_pipeline
from colorize import metrics

config_flags.DEFINE_config_file("config", None, "Training config file.", lock_config=True)
flags.mark_flag_as_required("config")


def main(argv):
  del argv
  config = flags.FLAGS.config
  images = input_pipeline.eval_images(config, config.eval_examples)
  cond, target = color.encode(images, config.color_space)
  gray = np.asarray(color.condition_to_rgb(cond, config.color_space))
  # Scored exactly as train._evaluate scores a model's output: via the saved 8-bit image.
  _, gray_target = color.encode(np.round(gray * 255).astype(np.uint8), config.color_space)
  print(json.dumps({
      "baseline": "gray", "images": len(images),
      "eval_l1": float(np.mean(metrics.mean_absolute_error(gray_target, target))),
      "eval_psnr": float(np.mean(metrics.psnr(gray, images / 255.0)))}))


if __name__ == "__main__":
  app.run(main)
