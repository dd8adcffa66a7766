"""Exporters: a ported folder written in another library's format.

``hf``: transformers classes (:func:`modelport.exporters.hf.export_hf`).
"""
