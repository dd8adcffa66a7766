"""Beam search, greedy search and sampling with each framework's semantics."""
