"""Exporters: a ported folder written in another library's format.

``hf``: transformers classes (:func:`modelport.exporters.hf.export_hf`);
``onnx``: encoder/decoder graphs for onnxruntime
(:func:`modelport.exporters.onnx.export_onnx`). Both record what they did in
``REPORT_NAME``, whose ``target`` names the exporter.
"""

REPORT_NAME = "export_report.json"
