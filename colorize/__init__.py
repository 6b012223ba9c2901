"""colorize: a WGAN-GP image colorizer in JAX/Flax."""
