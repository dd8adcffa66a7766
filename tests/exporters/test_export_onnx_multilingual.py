"""`export onnx` of a multilingual port (assets/fixture-m2m, en<->de): the
verification translates in the direction --source-lang/--target-lang name, as
`translate` needs one; it failed asking for a --source-lang the command did not
offer, so no multilingual port could be exported to ONNX."""

from __future__ import annotations

import json

import pytest

from tests.helpers.cli import main, one_line_error
from tests.helpers.paths import ROOT

pytest.importorskip("onnxruntime")

LINES = (ROOT / "assets" / "fixture-m2m" / "test.en").read_text(encoding="utf-8").splitlines()[:6]


def test_export_onnx_verifies_in_the_given_direction(ported_m2m, tmp_path, capsys) -> None:
    data = tmp_path / "data.en"
    data.write_text("".join(x + "\n" for x in LINES), encoding="utf-8")
    out = tmp_path / "onnx"
    base = ["export", "onnx", str(ported_m2m.path), str(out), "--data", str(data)]
    assert "pass the source language (--source-lang" in one_line_error(base, capsys)
    assert "do not apply with --no-verify" in one_line_error(base + ["--no-verify", "--source-lang", "en",
                                                                      "--target-lang", "de"], capsys)
    assert "--opset does not apply to `export ct2`" in one_line_error(
        ["export", "ct2", str(ported_m2m.path), str(tmp_path / "ct2"), "--opset", "17"], capsys)
    assert not out.exists()

    assert main(base + ["--source-lang", "en", "--target-lang", "de", "--json"]) == 0
    verification = json.loads(capsys.readouterr().out)["verification"]
    assert verification["beam"]["identical"] == len(LINES) and verification["passed"]
    assert verification["languages"] == {"source": "en", "target": "de"}
    # what the export translates is the port's en->de translation
    assert main(["translate", str(out), "-i", str(data), "--source-lang", "en", "--target-lang", "de"]) == 0
    ours = [h[0].text for h in ported_m2m.translate(LINES, source_lang="en", target_lang="de")]
    assert capsys.readouterr().out.splitlines() == ours
