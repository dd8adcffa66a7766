"""Exporters: transformers classes, ONNX."""
