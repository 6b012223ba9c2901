"""colorize: a WGAN-GP image colorizer in JAX/Flax."""
from colorize.inference import Colorizer

__all__ = ["Colorizer"]
