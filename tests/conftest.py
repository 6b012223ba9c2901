"""Shared test setup: CPU only, fast compiles, repo root importable (for `configs`)."""
import os
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Test models are tiny, so compiling dominates: LLVM -O0 compiles 2-7x faster, and the
# persistent cache lets tests (and their subprocesses) that build the same program share it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), "colorize-test-jax-cache"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
