"""Passes over ported models: quantization and pruning."""
