"""Image-quality and colorization metrics, batched, in jax.numpy.

Two kinds of functions:
  * per-image metrics take two batches of images of the same shape [B, H, W, C] and return a
    float32 array [B]; averaging over a data set is the caller's job (so a metric can be
    reported as a mean, a median or a histogram). `colorize.scoring` turns them into the
    summary numbers of a results table; `delta_e2000` is per pixel.
  * `ab_histogram` counts colours over any number of pixels; counts from many batches add up,
    so the colour distribution of a whole test set is accumulated batch by batch.

Where values live: sRGB images are compared as given (any real dtype, with a `data_range`);
the Lab metrics take CIE Lab as `colorize.color.rgb_to_lab` returns it (D65, L in [0, 100],
a and b within about +-110). Inputs are compared in float32, never in their own dtype,
because uint8 differences wrap around. Every metric here needs only the pixels; those that
need a network's weights (FID, LPIPS) would plug in as a `colorize.scoring.SetMetric`.
"""
import jax
import jax.numpy as jnp
import numpy as np

# SSIM as Wang et al. 2004 define it: an 11-tap Gaussian window (sigma 1.5), K1 = 0.01,
# K2 = 0.03. skimage's `structural_similarity(gaussian_weights=True, sigma=1.5,
# use_sample_covariance=False)` truncates its Gaussian at 3.5 sigma: radius 5, 11 taps.
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5
_SSIM_K1, _SSIM_K2 = 0.01, 0.03

# ab histograms: bins of AB_BIN Lab units centred on 0 (neutral colours, whose ab is 0 up to
# float rounding, fall in the middle of one bin rather than on the edge between two), over
# [-AB_HIST_LIMIT, AB_HIST_LIMIT], which holds every sRGB colour (|a|, |b| < 108).
AB_BIN = 10.0
AB_HIST_LIMIT = 115.0
AB_BINS = int(2 * AB_HIST_LIMIT / AB_BIN)  # 23 per axis.

# Lab channel ranges for `lab_accuracy` (Nazeri et al. 2018): L in [0, 100], a and b in
# [-110, 110].
_LAB_RANGES = np.array([100.0, 220.0, 220.0], np.float32)


def _as_pair(a_BHWC: jax.Array, b_BHWC: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Checks that the two batches have the same shape and converts them to float32."""
  a_BHWC, b_BHWC = jnp.asarray(a_BHWC), jnp.asarray(b_BHWC)
  if a_BHWC.shape != b_BHWC.shape:
    raise ValueError(f"Image batches differ in shape: {a_BHWC.shape} vs {b_BHWC.shape}.")
  if a_BHWC.ndim < 2:
    raise ValueError(f"Expected a batch of images [B, ...], got shape {a_BHWC.shape}.")
  return a_BHWC.astype(jnp.float32), b_BHWC.astype(jnp.float32)


def _as_lab_pair(a_BHW3: jax.Array, b_BHW3: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`_as_pair` for Lab batches: also checks the 3 channels."""
  a_BHW3, b_BHW3 = _as_pair(a_BHW3, b_BHW3)
  if a_BHW3.shape[-1] != 3:
    raise ValueError(f"Expected Lab images [..., 3], got shape {a_BHW3.shape}.")
  return a_BHW3, b_BHW3


def _mean_per_image(x_B: jax.Array) -> jax.Array:
  """Averages over every axis but the first (batch) one."""
  return jnp.mean(x_B, axis=tuple(range(1, x_B.ndim)))


def psnr(a_BHWC: jax.Array, b_BHWC: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Peak signal-to-noise ratio 10 log10(data_range**2 / MSE), per image.

  Identical images give +inf (MSE = 0), not a capped value: a cap would be an arbitrary
  number that silently enters averages. Callers that average over a data set should expect
  it (it only happens for a perfect reconstruction).

  Args:
    a_BHWC: images, shape [B, H, W, C] (any trailing shape works).
    b_BHWC: images of the same shape.
    data_range: max minus min of the possible values: 1.0 for float images in [0, 1],
      255.0 for uint8.

  Returns:
    float32 PSNR in dB, shape [B].
  """
  mse_B = mean_squared_error(a_BHWC, b_BHWC)
  # data_range**2 / 0 = inf and log10(inf) = inf: no NaN for identical images.
  return 10.0 * jnp.log10(jnp.float32(data_range) ** 2 / mse_B)


def mean_squared_error(a_BHWC: jax.Array, b_BHWC: jax.Array) -> jax.Array:
  """Mean squared difference over all pixels and channels, per image.

  A set's PSNR is best computed from the mean of these over the set (the pooled MSE): a
  per-image PSNR mean is dominated by the few images reproduced almost exactly.

  Args:
    a_BHWC: images, shape [B, H, W, C] (any trailing shape works).
    b_BHWC: images of the same shape.

  Returns:
    float32 mean (a - b)**2, shape [B], in the squared units of the inputs.
  """
  a_BHWC, b_BHWC = _as_pair(a_BHWC, b_BHWC)
  return _mean_per_image(jnp.square(a_BHWC - b_BHWC))


def mean_absolute_error(a_BHWC: jax.Array, b_BHWC: jax.Array) -> jax.Array:
  """Mean absolute difference over all pixels and channels, per image.

  Args:
    a_BHWC: images, shape [B, H, W, C] (any trailing shape works).
    b_BHWC: images of the same shape.

  Returns:
    float32 mean |a - b|, shape [B], in the units of the inputs.
  """
  a_BHWC, b_BHWC = _as_pair(a_BHWC, b_BHWC)
  return _mean_per_image(jnp.abs(a_BHWC - b_BHWC))


def _gaussian_valid(x_BHWC: jax.Array) -> jax.Array:
  """Separable Gaussian filter (SSIM's window) over H and W, only where it fits: 'valid'.

  The output is what skimage keeps after filtering: it crops SSIM_RADIUS pixels off every
  border, exactly the pixels whose window reaches outside the image.
  """
  taps = np.exp(-0.5 * (np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1) / SSIM_SIGMA) ** 2)
  taps = (taps / taps.sum()).astype(np.float32)
  for axis in (1, 2):
    n = x_BHWC.shape[axis] - 2 * SSIM_RADIUS
    x_BHWC = sum(w * jax.lax.slice_in_dim(x_BHWC, k, k + n, axis=axis)
                 for k, w in enumerate(taps))
  return x_BHWC


def ssim(a_BHWC: jax.Array, b_BHWC: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Structural similarity (Wang et al. 2004), per image, averaged over the channels.

  The SSIM map is computed for each channel on its own with an 11x11 Gaussian window
  (sigma 1.5, normalised to sum 1), population (not sample) moments, C1 = (0.01 R)**2,
  C2 = (0.03 R)**2 with R = `data_range`; the map is averaged over the positions where the
  window fits inside the image (H - 10 by W - 10) and over the channels. This equals
  `skimage.metrics.structural_similarity(a, b, data_range=R, channel_axis=-1,
  gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`.

  Args:
    a_BHWC: images, shape [B, H, W, C] with H, W >= 11.
    b_BHWC: images of the same shape.
    data_range: max minus min of the possible values: 1.0 for float images in [0, 1].

  Returns:
    float32 SSIM in [-1, 1] (1 for identical images), shape [B].

  Raises:
    ValueError: shapes differ, or an image side is shorter than the 11-pixel window.
  """
  a_BHWC, b_BHWC = _as_pair(a_BHWC, b_BHWC)
  if a_BHWC.ndim != 4 or min(a_BHWC.shape[1:3]) < 2 * SSIM_RADIUS + 1:
    raise ValueError(f"SSIM needs images [B, H, W, C] with H, W >= {2 * SSIM_RADIUS + 1}, "
                     f"got shape {a_BHWC.shape}.")
  c1 = (_SSIM_K1 * data_range) ** 2
  c2 = (_SSIM_K2 * data_range) ** 2
  # The second moments are taken about each image's (channel) mean: E[x^2] - E[x]^2 in
  # float32 loses ~1e-7 of E[x^2], which next to C2 = 9e-4 would cost SSIM ~1e-4.
  shift_a = jnp.mean(a_BHWC, axis=(1, 2), keepdims=True)
  shift_b = jnp.mean(b_BHWC, axis=(1, 2), keepdims=True)
  a_BHWC, b_BHWC = a_BHWC - shift_a, b_BHWC - shift_b
  mu_a, mu_b = _gaussian_valid(a_BHWC), _gaussian_valid(b_BHWC)
  var_a = _gaussian_valid(a_BHWC * a_BHWC) - mu_a * mu_a
  var_b = _gaussian_valid(b_BHWC * b_BHWC) - mu_b * mu_b
  cov = _gaussian_valid(a_BHWC * b_BHWC) - mu_a * mu_b
  # The luminance term needs the means themselves: the shifts are added back.
  mu_a, mu_b = mu_a + shift_a, mu_b + shift_b
  ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2) /
              ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)))
  return _mean_per_image(ssim_map)


def _polar(a: jax.Array, b: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(chroma, hue angle in [0, 2 pi)) of the point (a, b); the hue of (0, 0) is 0."""
  hue = jnp.arctan2(b, a)
  return jnp.hypot(a, b), jnp.where(hue < 0, hue + 2 * np.pi, hue)


def delta_e2000(lab1: jax.Array, lab2: jax.Array) -> jax.Array:
  """CIEDE2000 colour difference (Sharma, Wu and Dalal 2005), per pixel.

  kL = kC = kH = 1 (reference conditions). Follows `skimage.color.deltaE_ciede2000` step by
  step, including its hue conventions where a chroma is 0. About 1 is a just noticeable
  difference; the difference between black and white is 100.

  Args:
    lab1: CIE Lab, shape [..., 3].
    lab2: CIE Lab, same shape.

  Returns:
    float32 Delta E00 >= 0, shape [...].
  """
  lab1, lab2 = _as_lab_pair(lab1, lab2)
  l1, a1, b1 = jnp.moveaxis(lab1, -1, 0)
  l2, a2, b2 = jnp.moveaxis(lab2, -1, 0)
  # a is stretched by 1 + G (G from the mean chroma) so near-neutral blues come out right;
  # everything after works on the primed chroma C' and hue h'.
  c7 = (0.5 * (jnp.hypot(a1, b1) + jnp.hypot(a2, b2))) ** 7
  scale = 1.0 + 0.5 * (1.0 - jnp.sqrt(c7 / (c7 + 25.0**7)))
  c1, h1 = _polar(a1 * scale, b1)
  c2, h2 = _polar(a2 * scale, b2)

  l_mean = 0.5 * (l1 + l2)
  sl = 1.0 + 0.015 * (l_mean - 50.0) ** 2 / jnp.sqrt(20.0 + (l_mean - 50.0) ** 2)
  l_term = (l2 - l1) / sl

  c_mean = 0.5 * (c1 + c2)
  c_term = (c2 - c1) / (1.0 + 0.045 * c_mean)

  # Hue difference and mean hue go the short way round the circle; with a zero chroma the
  # hue is undefined: the difference is 0 and the "mean" is the sum (the other hue).
  h_diff, h_sum, cc = h2 - h1, h1 + h2, c1 * c2
  dh = jnp.where(h_diff > np.pi, h_diff - 2 * np.pi,
                 jnp.where(h_diff < -np.pi, h_diff + 2 * np.pi, h_diff))
  dh = jnp.where(cc == 0.0, 0.0, dh)
  wraps = (cc != 0.0) & (jnp.abs(h_diff) > np.pi)
  h_mean = 0.5 * jnp.where(wraps, jnp.where(h_sum < 2 * np.pi, h_sum + 2 * np.pi,
                                            h_sum - 2 * np.pi), h_sum)
  h_mean = jnp.where(cc == 0.0, h_sum, h_mean)
  t = (1.0 - 0.17 * jnp.cos(h_mean - np.deg2rad(30.0)) + 0.24 * jnp.cos(2.0 * h_mean)
       + 0.32 * jnp.cos(3.0 * h_mean + np.deg2rad(6.0))
       - 0.20 * jnp.cos(4.0 * h_mean - np.deg2rad(63.0)))
  h_term = 2.0 * jnp.sqrt(cc) * jnp.sin(dh / 2.0) / (1.0 + 0.015 * c_mean * t)

  # The rotation term tilts the ellipses of the blue region (hue around 275 degrees).
  c7 = c_mean**7
  rotation = np.deg2rad(30.0) * jnp.exp(-(((jnp.rad2deg(h_mean) - 275.0) / 25.0) ** 2))
  r_term = -jnp.sin(2.0 * rotation) * 2.0 * jnp.sqrt(c7 / (c7 + 25.0**7)) * c_term * h_term
  return jnp.sqrt(jnp.maximum(l_term**2 + c_term**2 + h_term**2 + r_term, 0.0))


def ab_auc(a_lab_BHW3: jax.Array, b_lab_BHW3: jax.Array,
           max_threshold: float = 150.0) -> jax.Array:
  """Area under the cumulative ab-error curve (Zhang, Isola and Efros 2016), per image.

  Each pixel's error is the Euclidean distance of its (a, b) from the reference's, in Lab
  units. The curve is F(t), the fraction of the image's pixels with error <= t, for
  thresholds t in [0, max_threshold]; the result is its area divided by max_threshold:
  1 for a perfect colourization, 0 when every pixel is off by max_threshold or more.
  The area is computed exactly, as the pixel mean of 1 - min(error, T) / T (the integral
  over t of the indicator error <= t), rather than by summing the curve at thresholds
  0, 1, ..., 150 as Zhang et al. did; the two differ by less than 0.5 / 150.

  Args:
    a_lab_BHW3: CIE Lab images, shape [B, H, W, 3] (L is ignored).
    b_lab_BHW3: CIE Lab images, same shape.
    max_threshold: the last threshold T, in Lab units.

  Returns:
    float32 AuC in [0, 1], shape [B].
  """
  a_lab_BHW3, b_lab_BHW3 = _as_lab_pair(a_lab_BHW3, b_lab_BHW3)
  error_BHW = jnp.linalg.norm(a_lab_BHW3[..., 1:] - b_lab_BHW3[..., 1:], axis=-1)
  return _mean_per_image(1.0 - jnp.minimum(error_BHW, max_threshold) / max_threshold)


def lab_accuracy(a_lab_BHW3: jax.Array, b_lab_BHW3: jax.Array, fraction: float) -> jax.Array:
  """Fraction of pixels whose L, a and b are all within `fraction` of their channel's range.

  The pixel accuracy of Nazeri, Ng and Ebrahimi 2018: a pixel counts as correct when
  |dL| <= fraction * 100 and |da|, |db| <= fraction * 220 (L in [0, 100], a and b in
  [-110, 110]); at 2% that is 2 and 4.4 Lab units. Nazeri et al. rounded L, a and b to
  integers before comparing; here the values are compared as they are.

  Args:
    a_lab_BHW3: CIE Lab images, shape [B, H, W, 3].
    b_lab_BHW3: CIE Lab images, same shape.
    fraction: the threshold as a fraction of each channel's range, e.g. 0.02.

  Returns:
    float32 accuracy in [0, 1], shape [B].
  """
  a_lab_BHW3, b_lab_BHW3 = _as_lab_pair(a_lab_BHW3, b_lab_BHW3)
  within = jnp.abs(a_lab_BHW3 - b_lab_BHW3) <= fraction * _LAB_RANGES
  return _mean_per_image(jnp.all(within, axis=-1).astype(jnp.float32))


def colorfulness(rgb_BHW3: jax.Array, data_range: float = 1.0) -> jax.Array:
  """Colourfulness M of Hasler and Suesstrunk 2003, per image.

  The metric they recommend (their M^(3)), on gamma-encoded sRGB scaled to [0, 255]:
  rg = R - G, yb = (R + G) / 2 - B, M = sqrt(var(rg) + var(yb)) + 0.3 sqrt(mean(rg)**2 +
  mean(yb)**2), with population moments over the image's pixels. 0 for any gray image;
  about 15 is "slightly colourful", 33 "moderately", 59 "quite", 82 "highly" (their scale).

  Args:
    rgb_BHW3: sRGB images, shape [B, H, W, 3].
    data_range: the value of full intensity: 1.0 for float images, 255.0 for uint8.

  Returns:
    float32 M >= 0 on the [0, 255] scale, shape [B].
  """
  rgb_BHW3 = jnp.asarray(rgb_BHW3, jnp.float32) * (255.0 / data_range)
  if rgb_BHW3.ndim < 2 or rgb_BHW3.shape[-1] != 3:
    raise ValueError(f"Expected sRGB images [B, ..., 3], got shape {rgb_BHW3.shape}.")
  r, g, b = jnp.moveaxis(rgb_BHW3, -1, 0)
  rg, yb = r - g, 0.5 * (r + g) - b
  axes = tuple(range(1, rg.ndim))
  spread = jnp.sqrt(jnp.var(rg, axis=axes) + jnp.var(yb, axis=axes))
  return spread + 0.3 * jnp.hypot(jnp.mean(rg, axis=axes), jnp.mean(yb, axis=axes))


def max_chroma(lab_BHW3: jax.Array) -> jax.Array:
  """The largest chroma sqrt(a**2 + b**2) over each image's pixels: 0 for a gray image.

  Args:
    lab_BHW3: CIE Lab images, shape [B, H, W, 3] (any [B, ..., 3] works).

  Returns:
    float32 chroma in Lab units, shape [B].
  """
  lab_BHW3 = jnp.asarray(lab_BHW3, jnp.float32)
  chroma = jnp.hypot(lab_BHW3[..., 1], lab_BHW3[..., 2])
  return jnp.max(chroma.reshape(chroma.shape[0], -1), axis=-1)


def ab_histogram(lab_BHW3: jax.Array, weights_B: jax.Array | None = None) -> jax.Array:
  """Counts the pixels of a batch in a 2-D histogram of (a, b).

  Bins are AB_BIN = 10 Lab units wide and centred on 0: bin i of an axis holds values in
  [-115 + 10 i, -105 + 10 i), for i in 0..22; values beyond +-115 (none for sRGB colours) go
  to the edge bins. Counts of several batches add up to the histogram of all of them.

  Args:
    lab_BHW3: CIE Lab images, shape [B, H, W, 3] (L is ignored; any [B, ..., 3] works).
    weights_B: a weight per image, e.g. 0 for the padding of a fixed-size batch; 1 if None.

  Returns:
    float32 counts [AB_BINS, AB_BINS], indexed [a bin, b bin].
  """
  lab_BHW3 = jnp.asarray(lab_BHW3, jnp.float32)
  index = jnp.clip(jnp.floor((lab_BHW3[..., 1:] + AB_HIST_LIMIT) / AB_BIN), 0, AB_BINS - 1)
  flat = (index[..., 0] * AB_BINS + index[..., 1]).astype(jnp.int32)
  weights = jnp.ones(flat.shape[:1]) if weights_B is None else jnp.asarray(weights_B)
  weights = jnp.broadcast_to(weights.reshape((-1,) + (1,) * (flat.ndim - 1)), flat.shape)
  counts = jnp.zeros(AB_BINS * AB_BINS, jnp.float32).at[flat.ravel()].add(weights.ravel())
  return counts.reshape(AB_BINS, AB_BINS)


def histogram_intersection(counts_a: jax.Array, counts_b: jax.Array) -> jax.Array:
  """Intersection sum(min(p, q)) of two histograms, each normalised to sum 1.

  Args:
    counts_a: non-negative counts, any shape, not all 0.
    counts_b: counts of the same shape.

  Returns:
    float32 scalar in [0, 1]: 1 for identical distributions, 0 for disjoint ones.
  """
  p = jnp.asarray(counts_a, jnp.float32)
  q = jnp.asarray(counts_b, jnp.float32)
  if p.shape != q.shape:
    raise ValueError(f"Histograms differ in shape: {p.shape} vs {q.shape}.")
  return jnp.sum(jnp.minimum(p / jnp.sum(p), q / jnp.sum(q)))
