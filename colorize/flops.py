"""The model's FLOPs per training iteration, counted from the layer shapes.

Only the convolutions count (the 4x4 ones, and the 1x1 layer of a classification head), and
only their real multiply-adds: an input pixel that exists
times a kernel tap, never a tap that falls on padding (what XLA's cost analysis counts, and
what the "matmul" forms partly compute, is more). Norms, activations and Adam are left out.

Per iteration (train_step.train_iteration, `n_critic` critic steps, the generator forward of
the last one shared with the generator update) the convolutions run as:
  generator forward        once per critic step (training mode);
  critic loss              forward and backward on real and fake together (2B samples): the
                           weight gradients of every layer, the input gradients of all but the
                           first (its input is data);
  gradient penalty         (wgan_gp) the critic's input gradient at x_hat, differentiated once
                           more for the weights: forward (all but the last layer, whose output
                           the gradient does not need), the inner backward's input gradients,
                           then the outer backward through that backward (weight gradients, and
                           the cotangents of every layer but the last, whose cotangent is the
                           constant seed) and through the forward up to the highest normed
                           layer (the layer norms' backward depends on the forward activations;
                           leaky ReLU's derivative is piecewise constant, so nothing flows
                           back through a layer without a norm above it);
  generator update         critic forward and input gradient on the fakes, then the generator
                           backward: weight gradients everywhere, input gradients of all but
                           the first layer (its input is the condition).
Where the critic's input gradient is taken, its first layer counts only the colour channels.
"""
import dataclasses

import ml_collections

from colorize import ab_bins
from colorize import color
from colorize import models


@dataclasses.dataclass(frozen=True)
class Layer:
  """One 4x4 convolution: `in_size` x `in_size` x `in_ch` in, `out_ch` out, per sample.

  `kernel=1` is a 1x1 layer (stride 1) instead: the classification head's logits.
  """
  in_size: int
  in_ch: int
  out_ch: int
  strides: int = 2
  transpose: bool = False
  kernel: int = 4

  def macs(self) -> int:
    """Real multiply-adds per sample (pairs of an existing input pixel and a tap)."""
    n = self.in_size
    if self.kernel == 1:
      return n * n * self.in_ch * self.out_ch
    if self.transpose:  # Input i, tap k -> output 2i + k - 1, which must lie in [0, 2n).
      per_axis = sum(0 <= 2 * i + k - 1 < 2 * n for i in range(n) for k in range(4))
    else:  # Output o, tap k <- input o * s + k - 1, which must lie in [0, n).
      out = (n + 2 - 4) // self.strides + 1
      per_axis = sum(0 <= o * self.strides + k - 1 < n for o in range(out) for k in range(4))
    return per_axis**2 * self.in_ch * self.out_ch


def generator_layers(config: ml_collections.ConfigDict) -> list[Layer]:
  """The generator's convolutions in forward order, as models.UNetGenerator builds them."""
  m = config.model
  depth = models.unet_depth(config.image_size)
  widths = [min(m.width * 2**i, m.max_width) for i in range(depth)]
  layers, size, ch = [], config.image_size, 1
  for w in widths:
    layers.append(Layer(size, ch, w))
    size, ch = size // 2, w
  for skip in reversed(widths[:-1]):
    layers.append(Layer(size, ch, skip, transpose=True))
    size, ch = size * 2, 2 * skip  # The skip connection is concatenated.
  if m.head == "classification":
    layers.append(Layer(size, ch, m.width, transpose=True))
    layers.append(Layer(2 * size, m.width, ab_bins.BINS**2, strides=1, kernel=1))
  else:
    layers.append(Layer(size, ch, color.target_channels(config.color_space), transpose=True))
  return layers


def critic_layers(config: ml_collections.ConfigDict) -> list[Layer]:
  """The critic's convolutions in forward order, as models.PatchCritic builds them."""
  m = config.model
  layers, size, ch = [], config.image_size, 1 + color.target_channels(config.color_space)
  for i in range(m.critic_layers):
    layers.append(Layer(size, ch, m.critic_width * 2**i))
    size, ch = size // 2, m.critic_width * 2**i
  layers.append(Layer(size, ch, 1, strides=1))
  return layers


def iteration_flops(config: ml_collections.ConfigDict) -> float:
  """FLOPs (2 per multiply-add) of one training iteration at config.batch_size.

  Args:
    config: the run config (model.*, image_size, color_space, loss, n_critic, batch_size).

  Returns:
    The convolutions' real FLOPs of `n_critic` critic steps and one generator step.
  """
  views = 2 if config.model.mirror_average else 1  # The generator runs on both views.
  g = [views * layer.macs() for layer in generator_layers(config)]
  generator_backward = sum(g) + sum(g[1:])  # dW of every layer, dX of all but the first.
  if config.loss == "l1":
    return 2.0 * config.batch_size * (sum(g) + generator_backward)
  d = [layer.macs() for layer in critic_layers(config)]
  colour = color.target_channels(config.color_space)
  critic_dx = colour / (1 + colour) * d[0] + sum(d[1:])  # The critic's input gradient.
  generator_update = sum(d) + critic_dx + generator_backward
  critic_update = 2 * (sum(d) + sum(d) + sum(d[1:]))  # 2B samples: forward, dW, dX.
  if config.loss == "wgan_gp":
    top = config.model.critic_layers - 1  # The highest layer with a norm (0: none).
    below_norms = d[:top + 1] if top else []
    critic_update += (sum(d[:-1])  # Forward to the last layer's input.
                      + critic_dx  # The inner backward.
                      + critic_dx  # Outer: weight gradients of the inner backward's convs.
                      + critic_dx - d[-1]  # Outer: their cotangents, but the last layer's.
                      + sum(below_norms) + sum(below_norms[1:]))  # Outer, forward: dW, dX.
  return 2.0 * config.batch_size * (config.n_critic * (sum(g) + critic_update)
                                    + generator_update)
