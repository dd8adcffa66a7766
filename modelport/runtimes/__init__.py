"""Runtimes other than torch behind the search loop's decoder interface.

``onnx``: an ``export onnx`` folder run by onnxruntime
(:mod:`modelport.runtimes.onnx`), driven by modelport's own beam search
(:class:`~modelport.generation.backend.SearchBackend`). A runtime imports its
library only inside functions, so importing this package needs none of them.
"""
