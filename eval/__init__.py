"""Benchmark definitions (YAML task configs, the paper's numbers), shipped as nspzero.eval."""
