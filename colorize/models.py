"""The pix2pix U-Net generator and the PatchGAN critic (flax.linen, NHWC).

Layer for layer these are the models of a PyTorch reference (not shipped; torch's
`Conv2d(k=4, s=2, p=1)` / `ConvTranspose2d(k=4, s=2, p=1)`, see colorize/conv.py), so
parameter counts match:
at 32x32 with width 64 the generator has 16,655,554 parameters and the critic 663,745.
"""
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from colorize import ab_bins
from colorize import conv

NORMS = ("batch", "instance", "layer", "none")
# Which decoder layers get dropout: "innermost3", the three innermost whatever their width
# (the seed project's reading of pix2pix); "full_width", those of the three innermost that
# have max_width channels, which is where pix2pix has it at 256 px (one layer at 32 px).
DROPOUT_LAYERS = ("innermost3", "full_width")
COMPUTE_DTYPES = ("float32", "bfloat16")
# What the generator's last layer predicts: "regression", the colour channels directly (tanh);
# "classification", logits over the ab bins (colorize/ab_bins.py, Lab only), decoded by the
# annealed mean (Zhang et al. 2016).
HEADS = ("regression", "classification")

def unet_depth(image_size: int) -> int:
  """Number of stride-2 encoder layers that take `image_size` down to 1x1."""
  return int(math.log2(image_size))


def mirror_views(images_BHWC: jax.Array) -> jax.Array:
  """The images, then their mirror images: [2B, H, W, C], one batch for both views."""
  return jnp.concatenate([images_BHWC, images_BHWC[:, :, ::-1]])


def mirror_mean(both_views_BHWC: jax.Array) -> jax.Array:
  """The mean of what `mirror_views`' two halves gave, the mirror half mirrored back: [B, ...].

  A function f of images becomes mirror-equivariant as `mirror_mean(f(mirror_views(x)))`.
  """
  plain, mirrored = jnp.split(both_views_BHWC, 2)
  return (plain + mirrored[:, :, ::-1]) / 2


def _norm(kind: str, train: bool, axis_name: str | None, momentum: float, dtype: Any):
  """Returns a normalisation layer; `axis_name` syncs batch statistics under pmap.

  Its statistics are float32 whatever `dtype` (flax's norms reduce in float32); the output
  has `dtype`.
  """
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, axis_name=axis_name,
                        dtype=dtype)
  if kind == "instance":
    return nn.GroupNorm(num_groups=None, group_size=1, dtype=dtype)
  if kind == "layer":
    return nn.GroupNorm(num_groups=1, dtype=dtype)
  if kind == "none":
    return lambda x: x
  raise ValueError(f"model.norm={kind!r}; expected one of {NORMS}")


class UNetGenerator(nn.Module):
  """pix2pix U-Net: 4x4 stride-2 convs down to 1x1, transposed convs up, skip connections.

  Attributes:
    out_channels: 2 (ab) for Lab, 3 for RGB.
    width: channels of the first encoder layer; doubles per layer up to `max_width`.
    max_width: channel cap.
    norm: "batch" (pix2pix), "instance", "layer" or "none". Like pix2pix, the outermost and
      innermost encoder layers have no norm.
    dropout: rate in the decoder layers that `dropout_layers` names; 0 disables.
    dropout_layers: one of DROPOUT_LAYERS.
    init_std: > 0 starts every kernel as N(0, init_std) (the pix2pix tutorial's 0.02); 0
      keeps flax's default.
    bn_momentum: batch norm's running-average momentum; 0 makes one training-mode call
      store that batch's statistics (used to recompute them for the EMA weights).
    axis_name: pmap axis over which batch norm averages its statistics (None under jit,
      where the global batch is one array and the statistics are global already).
    conv_impl: "auto", "xla" or "matmul" (see colorize/conv.py).
    depth: stride-2 encoder layers (None: down to 1x1).
    dtype: compute dtype (float32 or bfloat16); params and batch statistics stay float32,
      and the output is float32.
    head: one of HEADS. "classification" (out_channels must be 2, ab) ends in a transposed
      conv to `width` channels and a 1x1 layer to ab_bins.BINS**2 logits, sown as
      ("intermediates", "ab_logits") for the cross-entropy, and returns their annealed mean.
    temperature: the annealed mean's temperature (classification head only).
    num_classes: > 0 adds a linear classifier of the image's class on the 1x1 bottleneck
      (Iizuka et al. 2016's auxiliary classification), its logits sown as
      ("intermediates", "class_logits") for config.class_weight's cross-entropy.
    mirror_average: the output is the mean of the network's colours for the image and for its
      mirror image, mirrored back, in training as at inference: mirror-equivariant by
      construction (regression head, no classifier: their sown logits would hold both views).
  """
  out_channels: int = 2
  width: int = 64
  max_width: int = 512
  norm: str = "batch"
  dropout: float = 0.5
  dropout_layers: str = "innermost3"
  init_std: float = 0.0
  bn_momentum: float = 0.9
  axis_name: str | None = None
  conv_impl: str = "auto"
  depth: int | None = None
  dtype: Any = jnp.float32
  head: str = "regression"
  temperature: float = 0.38
  num_classes: int = 0
  mirror_average: bool = False

  def __call__(self, cond_BHW1: jax.Array, *, train: bool) -> jax.Array:
    """Maps the condition (L or gray, in [-1, 1]) to colour channels in [-1, 1]."""
    if not self.mirror_average:
      return self._unet(cond_BHW1, train)
    # In training, batch norm's statistics are those of both views, which hold the same pixels.
    return mirror_mean(self._unet(mirror_views(cond_BHW1), train))

  @nn.compact
  def _unet(self, cond_BHW1: jax.Array, train: bool) -> jax.Array:
    depth = self.depth or unet_depth(cond_BHW1.shape[1])
    use_norm = self.norm != "none"
    widths = [min(self.width * 2**i, self.max_width) for i in range(depth)]

    skips = []
    x = cond_BHW1
    norm = functools.partial(_norm, self.norm, train, self.axis_name, self.bn_momentum,
                             self.dtype)
    for i, w in enumerate(widths):
      normed = use_norm and 0 < i < depth - 1
      x = conv.Conv4x4(w, use_bias=not normed, impl=self.conv_impl, init_std=self.init_std,
                       dtype=self.dtype)(x)
      if normed:
        x = norm()(x)
      x = nn.leaky_relu(x, 0.2)
      skips.append(x)

    skips.pop()  # The 1x1 bottleneck is x itself.
    if self.num_classes:
      # The mean over the bottleneck's pixels: its one pixel at the training size, and the
      # classifier still applies when the network runs on a larger image (native colorizing).
      logits = nn.Dense(self.num_classes, dtype=self.dtype)(x.mean(axis=(1, 2)))
      self.sow("intermediates", "class_logits", logits.astype(jnp.float32))
    for j, skip in enumerate(reversed(skips)):
      features = skip.shape[-1]
      x = conv.ConvTranspose4x4(features, use_bias=not use_norm, impl=self.conv_impl,
                                init_std=self.init_std, dtype=self.dtype)(x)
      if use_norm:
        x = norm()(x)
      x = nn.relu(x)
      if self.dropout > 0 and j < 3 and (self.dropout_layers == "innermost3"
                                         or features == self.max_width):
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
      x = jnp.concatenate([x, skip], axis=-1)

    if self.head == "regression":
      x = conv.ConvTranspose4x4(self.out_channels, impl=self.conv_impl,
                                init_std=self.init_std, dtype=self.dtype)(x)
      return jnp.tanh(x.astype(jnp.float32))
    if self.head != "classification" or self.out_channels != 2:
      raise ValueError(f"head={self.head!r} with out_channels={self.out_channels}; expected "
                       f"one of {HEADS}, and 2 (ab) channels for a classification head")
    # Logits for every bin straight from the 4x4 transposed conv would cost it BINS**2 output
    # channels; a 1x1 layer over `width` features predicts them for a fraction of that.
    x = conv.ConvTranspose4x4(self.width, impl=self.conv_impl, init_std=self.init_std,
                              dtype=self.dtype)(x)
    init = (nn.initializers.normal(self.init_std) if self.init_std > 0
            else nn.initializers.lecun_normal())
    # On [pixels, width] rather than [B, H, W, width]: XLA:CPU runs the 4-D dot, and its
    # gradients, several times slower (scripts/benchmark.py).
    x = nn.relu(x).reshape(-1, self.width)
    logits = nn.Dense(ab_bins.BINS**2, kernel_init=init, dtype=self.dtype)(x)
    logits = logits.reshape(*cond_BHW1.shape[:3], -1).astype(jnp.float32)
    self.sow("intermediates", "ab_logits", logits)
    return ab_bins.annealed_mean(logits, self.temperature)


class PatchCritic(nn.Module):
  """PatchGAN critic: one unbounded score per overlapping patch.

  No batch norm: the WGAN-GP penalty constrains each sample's gradient, and batch norm would
  couple the samples of a batch; layer norm (per sample) keeps them independent.

  Each hidden layer's activations are sown as ("intermediates", "features"), a tuple in layer
  order, for the generator's feature-matching term.

  Attributes:
    width: channels of the first layer; doubles per stride-2 layer.
    num_layers: stride-2 conv layers before the 1-channel 4x4 stride-1 output conv.
    conv_impl: "auto", "xla" or "matmul" (see colorize/conv.py).
    init_std: > 0 starts every kernel as N(0, init_std); 0 keeps flax's default.
    dtype: compute dtype (float32 or bfloat16); params and the layer norms' statistics stay
      float32, and the scores are float32.
    num_classes: > 0 makes it a projection critic (Miyato & Koyama 2018): every patch score
      of an image gains the inner product of its class's embedding with the image's pooled
      last features, so the critic judges the colours for the class it is told.
  """
  width: int = 64
  num_layers: int = 3
  conv_impl: str = "auto"
  init_std: float = 0.0
  dtype: Any = jnp.float32
  num_classes: int = 0

  @nn.compact
  def __call__(self, cond_BHW1: jax.Array, color_BHWC: jax.Array,
               labels_B: jax.Array | None = None) -> jax.Array:
    """Scores (condition, colour) pairs; returns float32 [B, h, w, 1] patch scores.

    `labels_B` (int [B]) are the images' classes, needed when num_classes > 0.
    """
    x = jnp.concatenate([cond_BHW1, color_BHWC], axis=-1)
    for i in range(self.num_layers):
      x = conv.Conv4x4(self.width * 2**i, impl=self.conv_impl, init_std=self.init_std,
                       dtype=self.dtype)(x)
      if i > 0:
        x = nn.GroupNorm(num_groups=1, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
      # For feature matching (losses.feature_matching); a no-op unless "intermediates" is
      # mutable in the call.
      self.sow("intermediates", "features", x)
    scores = conv.Conv4x4(1, strides=1, impl=self.conv_impl,
                          init_std=self.init_std, dtype=self.dtype)(x).astype(jnp.float32)
    if not self.num_classes:
      return scores
    if labels_B is None:
      raise ValueError("the critic is told each image's class (model.critic_projection): "
                       "pass their labels")
    embedding = nn.Embed(self.num_classes, x.shape[-1],
                         embedding_init=nn.initializers.normal(self.init_std or 0.02))
    projection = jnp.sum(x.mean(axis=(1, 2)).astype(jnp.float32) * embedding(labels_B), -1)
    return scores + projection[:, None, None, None]
