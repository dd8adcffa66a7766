"""Shared test helpers, imported as ``tests.helpers.<module>``: paths of the
fixtures, running the CLI in-process, building tiny fairseq checkpoints."""
