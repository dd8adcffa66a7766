"""Typed reports (what validate, a pass and an export measured) and the one
Markdown renderer. Plain data: this package imports nothing of modelport but
itself (and no torch), so every layer (the CLI, the card, publishing) reads
the same types."""

from modelport.reports.ct2 import Ct2ExportReport  # registers the "ct2" target for ExportReport.from_json
from modelport.reports.export import EXPORT_REPORT_NAME, ExportReport, HfExportReport, OnnxExportReport
from modelport.reports.markdown import render_markdown, write_report
from modelport.reports.parity import PARITY_REPORT_STEM, ParityReport
from modelport.reports.passes import PASS_REPORT_STEM, PassReport

__all__ = ["EXPORT_REPORT_NAME", "PARITY_REPORT_STEM", "PASS_REPORT_STEM", "Ct2ExportReport", "ExportReport",
           "HfExportReport",
           "OnnxExportReport", "ParityReport", "PassReport", "render_markdown", "write_report"]
