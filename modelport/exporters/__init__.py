"""Exporters: a ported folder written in another library's format.

``hf``: transformers classes (:func:`modelport.exporters.hf.export_hf`);
``onnx``: encoder/decoder graphs for onnxruntime
(:func:`modelport.exporters.onnx.export_onnx`); ``ct2``: a CTranslate2 model
directory (:func:`modelport.exporters.ct2.export_ct2`). Each returns its
:class:`~modelport.reports.export.ExportReport` and record it in
``REPORT_NAME``, whose ``target`` names the exporter.
"""

from modelport.reports.export import EXPORT_REPORT_NAME as REPORT_NAME

__all__ = ["REPORT_NAME"]
