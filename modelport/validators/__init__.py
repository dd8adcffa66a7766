"""Parity validators: run the reference framework and the port side by side."""
