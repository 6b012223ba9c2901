r"""CIFAR-10 colorization with WGAN-GP: the recipe chosen on the validation split.

    python -m colorize.main --config=configs/cifar10.py --workdir=runs/cifar10

Variants (`--config=configs/cifar10.py:<variant>[,<variant>...]`, applied in order):
  (none)          batch 16, 100 epochs of train[:90%], Adam(2e-4, 0.5, 0.999), n_critic 1,
                  lambda_gp 10, l1_weight 100, an EMA (0.999) of the generator and N(0, 0.02)
                  kernels: the seed recipe plus the two changes kept on the validation
                  split (docs/results.md).
  seed            the seed project's recipe (no EMA, constant learning rates, dropout in the
                  three innermost decoder layers, flax's initialisation, no jitter).
  wgan_gp_paper   Gulrajani et al. 2017: Adam(1e-4, 0.0, 0.9), n_critic 5.
  fast            large batch (256) for a GPU/TPU host, 20,000 steps, lr scaled by 4, the
                  EMA's horizon kept in images (decay 0.984).
  subset          10 epochs (whatever the batch size, so `fast,subset` too) on an offline
                  10% subset of CIFAR-10 (5,085 training images) that tfds prepared on the
                  development machine, where it sits beside the repository (the default
                  data_dir of `_subset`); elsewhere pass
                  --config.data_dir=/path/to/tensorflow_datasets.
  subset100       100 epochs on that subset, sample grids after epochs 1, 10, 25, 50, 100.

Metrics, with the commands that measured them, are in docs/results.md; the full-size
recipe (all of CIFAR-10) and the GPU variants have not been measured yet.
"""
import ml_collections


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """Returns the config for `variant` (see the module docstring)."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  # Data: a tfds name ("cifar10"), "folder:/path/to/images", or "shapes" (generated, offline).
  c.dataset = "cifar10"
  c.data_dir = ""  # tfds data_dir; "" is tfds' default (~/tensorflow_datasets).
  # Choices are made on a validation split carved from the training data; the test split is
  # scored only for the final tables (`python -m colorize.evaluate --split=test`).
  c.train_split = "train[:90%]"
  c.eval_split = "train[90%:]"
  c.image_size = 32
  c.batch_size = 16  # Global, over all devices and processes.
  c.data_threads = 4  # grain reader threads per process.
  c.random_jitter = False  # pix2pix: resize to 286/256 of image_size, then random crop.
  # Keep the resized training split on the devices and gather each batch there (the host sends
  # only crop plans): the same batches, without the host in the loop. Needs every image at one
  # shape (tfds datasets, shapes; not a folder of mixed sizes) and the split's memory.
  c.data_on_device = False
  # Training iterations per compiled call; 0: the largest divisor of log_every_steps up to 8
  # on CPU, up to 128 on GPU/TPU (docs/accelerators.md).
  c.steps_per_call = 0

  # Length: num_train_steps wins when > 0, else num_epochs of the training split.
  c.num_epochs = 100
  c.num_train_steps = -1

  # Method.
  c.color_space = "lab"  # "lab": L in, ab out (exact L kept); "rgb": gray in, RGB out.
  c.loss = "wgan_gp"  # "wgan_gp" | "vanilla" | "lsgan" | "l1" (no critic).
  c.lambda_gp = 10.0
  c.l1_weight = 100.0
  # > 0 weighs each pixel's L1 (and a classification head's cross-entropy) by the rarity of its
  # true colour in the training split (Zhang et al. 2016's class rebalancing,
  # colorize/rebalance.py; their choice is 0.5); "lab" only.
  c.l1_rebalance = 0.0
  # Weight of the cross-entropy over ab bins when model.head="classification" (Zhang et al.).
  c.ce_weight = 1.0
  # Weight of the cross-entropy of the generator's auxiliary classification of the image's
  # class (Iizuka et al. 2016; needs model.num_classes and a dataset with labels). 0: none.
  c.class_weight = 0.0
  # Weight of the sliced Wasserstein distance between the generated and true ab
  # (losses.sliced_wasserstein: colours distributed as the true ones); "lab" only. 0: none.
  # Of each image ("image"), or of the global batch's pixels as one set ("batch").
  c.swd_weight = 0.0
  c.swd_scope = "image"
  # Over the colours alone ("ab"), or the joint distribution of lightness and colour ("lab"):
  # each colour where the truth has it in lightness.
  c.swd_space = "ab"
  # Weight of pix2pixHD's feature matching (losses.feature_matching: the critic's hidden
  # features of the generated and the true pairs, matched per image); needs a critic. 0: none.
  c.feature_matching_weight = 0.0
  # DiffAugment (Zhao et al. 2020, colorize/diff_augment.py): every pair the critic sees,
  # real and generated, randomly translated and/or cut out, so that a critic trained on few
  # images cannot memorise them. "" (none), or a comma-separated subset of
  # "translation,cutout".
  c.critic_augment = ""
  c.n_critic = 1  # Critic updates per generator update, each on its own batch.
  # > 0 keeps an EMA of the generator params, used for samples, eval and inference. Chosen on
  # the validation split: it removes most of the checkpoint-to-checkpoint noise of a GAN.
  c.ema_decay = 0.999
  # Debias the EMA as Adam debiases its moments: the average of the weights trained so far,
  # each weighted by ema_decay ** age, without the share ema_decay ** step that the plain
  # recursion leaves on the random initial weights (large in a run not much longer than the
  # average's horizon, 1 / (1 - ema_decay) steps).
  c.ema_debias = False

  c.model = ml_collections.ConfigDict()
  c.model.width = 64  # Channels of the first encoder layer (pix2pix ngf/ndf).
  c.model.max_width = 512
  c.model.norm = "batch"  # Generator norm: "batch" | "instance" | "layer" | "none".
  c.model.dropout = 0.5  # pix2pix dropout in the innermost decoder layers.
  c.model.dropout_layers = "innermost3"  # Or "full_width": see colorize/models.py.
  # > 0: kernels start as N(0, init_std), the tutorial's 0.02; 0: flax's LeCun normal.
  c.model.init_std = 0.02
  # "regression": the generator predicts ab (tanh); "classification": logits over ab bins,
  # decoded by the annealed mean at model.temperature (Zhang et al. 2016; colorize/ab_bins.py).
  c.model.head = "regression"
  c.model.temperature = 0.38
  # > 0 adds a linear classifier of the image's class (of that many) to the generator's 1x1
  # bottleneck, trained with config.class_weight: 10 for CIFAR-10.
  c.model.num_classes = 0
  # True: the generator's colours are the mean of its colours for the image and for the mirror
  # image, mirrored back, in training too (twice the generator's work; see colorize/models.py).
  c.model.mirror_average = False
  c.model.critic_width = 64
  c.model.critic_layers = 3  # Stride-2 conv layers of the PatchGAN critic.
  # Condition the critic on the image's class too (Miyato & Koyama 2018's projection: each
  # score gains <embed(class), pooled features>), so it can tell colours that are wrong for
  # the class; needs model.num_classes. Labels are read in training only: inference has none.
  c.model.critic_projection = False
  c.model.conv_impl = "auto"  # "xla" | "matmul" | "auto" (matmul on CPU, xla on GPU/TPU).
  c.compute_dtype = "float32"  # Or "bfloat16": the models' arithmetic (params stay float32).

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.generator_lr = 2e-4
  c.optimizer.critic_lr = 2e-4
  c.optimizer.b1 = 0.5
  c.optimizer.b2 = 0.999
  # Both learning rates are constant for this fraction of the run, then decay linearly to 0
  # (pix2pix: 0.5); 1.0 keeps them constant.
  c.optimizer.decay_start = 1.0

  # Logging, evaluation, checkpoints.
  c.log_every_steps = 100
  c.eval_every_steps = 3125
  c.eval_examples = 1000  # First N images of eval_split (fixed, so runs compare).
  c.checkpoint_every_steps = 3125
  c.keep_checkpoints = 3
  c.sample_epochs = (1, 10, 25, 50, 100)  # Sample grids at the end of these epochs (+ last step).
  c.num_samples = 8  # Images in each sample grid.
  c.compilation_cache_dir = "~/.cache/colorize/jax"  # "" disables the persistent cache.

  # Reliability (docs/reliability.md).
  # A NaN/Inf loss, parameter or optimizer moment: "stop" ends the run with an error naming the
  # step and the value (the last good checkpoint is kept); "skip" drops that step's update and
  # counts it (`skipped_steps` in metrics.jsonl).
  c.on_nonfinite = "stop"
  # A workdir is resumed only with the model and data it was trained with (model.*, dataset,
  # image_size, batch_size, seed, ...); True continues with the new values anyway.
  c.allow_config_change = False

  for name in filter(None, variant.split(",")):
    if name not in _VARIANTS:
      raise ValueError(f"unknown variant {name!r} of configs/cifar10.py; use one or more "
                       f"(comma-separated) of: {', '.join(_VARIANTS)}")
    _VARIANTS[name](c)
  return c


def _seed(c: ml_collections.ConfigDict) -> None:
  """The seed project's recipe, before the validation-selected changes (README, Results)."""
  c.ema_decay = 0.0
  c.model.dropout, c.model.dropout_layers, c.model.init_std = 0.5, "innermost3", 0.0
  c.optimizer.generator_lr = c.optimizer.critic_lr = 2e-4
  c.optimizer.decay_start = 1.0
  c.l1_weight = 100.0
  c.l1_rebalance = 0.0
  c.random_jitter = False


def _wgan_gp_paper(c: ml_collections.ConfigDict) -> None:
  c.optimizer.generator_lr = c.optimizer.critic_lr = 1e-4
  c.optimizer.b1, c.optimizer.b2 = 0.0, 0.9
  c.n_critic = 5


def _fast(c: ml_collections.ConfigDict) -> None:
  batch_size = 256
  if c.ema_decay > 0:
    # The EMA's horizon kept in images, not updates (1 - 256 / 16,000 = 0.984 for the default
    # 0.999): the decay measured at batch 256 on the subset (docs/results.md).
    c.ema_decay = 1 - (1 - c.ema_decay) * batch_size / c.batch_size
  c.batch_size = batch_size
  c.num_train_steps = 20_000
  c.optimizer.generator_lr = c.optimizer.critic_lr = 8e-4
  c.log_every_steps = 200
  c.eval_every_steps = c.checkpoint_every_steps = 2_000


def _subset(c: ml_collections.ConfigDict, num_epochs: int = 10,
            sample_epochs: tuple[int, ...] = (1, 5, 10)) -> None:
  # An offline 10% of CIFAR-10 (5,085 training and 500 test images) prepared by tfds, kept
  # beside the repository on the development machine (relative to the current directory, the
  # repository root); point data_dir at your own copy.
  c.data_dir = "../shared/data/cifar10_subset/tfds"
  # Its length is in epochs, also after a variant that fixes the steps (`fast,subset`).
  c.num_train_steps = -1
  c.num_epochs = num_epochs
  c.eval_every_steps = c.checkpoint_every_steps = _subset_epoch_steps(c)
  c.sample_epochs = sample_epochs


def _subset_epoch_steps(c: ml_collections.ConfigDict) -> int:
  """One epoch of the subset's 4,576 training images, in steps (input_pipeline's count)."""
  return max(1, 4_576 // (c.batch_size * c.n_critic))


def _subset100(c: ml_collections.ConfigDict) -> None:
  _subset(c, num_epochs=100, sample_epochs=(1, 10, 25, 50, 100))
  # Every fifth epoch: scoring the validation split after each one would add a good part of
  # the run's time, and 20 points still draw its curve.
  c.eval_every_steps = c.checkpoint_every_steps = 5 * _subset_epoch_steps(c)


_VARIANTS = {"seed": _seed, "wgan_gp_paper": _wgan_gp_paper, "fast": _fast, "subset": _subset,
             "subset100": _subset100}
