"""Fixed-size batches: the last one zero-padded, so one compiled program serves every batch."""
from typing import Iterator, Sequence

import numpy as np


def padded(arrays: Sequence[np.ndarray], size: int
           ) -> Iterator[tuple[list[np.ndarray], int]]:
  """Yields batches of `size` rows of `arrays`, the last one padded with zeros to `size` rows.

  Args:
    arrays: arrays with the same first dimension (e.g. outputs and their references).
    size: rows per batch.

  Yields:
    (a batch of each array, how many of its rows are real: the first ones).
  """
  for start in range(0, len(arrays[0]), size):
    parts = [a[start:start + size] for a in arrays]
    n = len(parts[0])
    yield [p if n == size else np.pad(p, [(0, size - n)] + [(0, 0)] * (p.ndim - 1))
           for p in parts], n
