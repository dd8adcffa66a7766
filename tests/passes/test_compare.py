"""``modelport compare``: a table (text and JSON) across a port and the
passes made from it, and a size/speed/BLEU PNG."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelport
from modelport.cli import compare as compare_command
from modelport.cli.common import Parser
from modelport.errors import ModelportError
from tests.helpers.paths import CORPUS

LINES = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:4]
REFS = (CORPUS / "test.de").read_text(encoding="utf-8").splitlines()[:4]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _compare(argv: list[str]) -> int:
    """``modelport compare ARGV``, through the command's own parser and handler."""
    parser = Parser(prog="modelport")
    compare_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["compare", *argv])
    try:
        return args.func(args)
    except ModelportError as e:
        return e.exit_code


@pytest.fixture(scope="module")
def folders(ported_default, tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("compare")
    modelport.quantize(ported_default.path, tmp / "int8", mode="int8", data=LINES, references=REFS)
    modelport.quantize(ported_default.path, tmp / "fp16", mode="fp16")  # size only: not measured on data
    return [ported_default.path, tmp / "int8", tmp / "fp16"]


def test_table_lists_each_folder(folders: list[Path], capsys) -> None:
    assert _compare([str(f) for f in folders]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["folder", "made", "by"]
    rows = {line.split()[0]: line for line in out[1:4]}
    assert set(rows) == {f.name for f in folders}
    assert "convert" in rows[folders[0].name] and "quantize mode=int8" in rows["int8"]
    assert "1,627,136" in rows["int8"] and "MB" in rows["int8"]
    assert any("best of 3 runs after a warm-up" in line for line in out)


def test_json_rows_carry_the_pass_reports_figures(folders: list[Path], capsys) -> None:
    assert _compare([str(f) for f in folders] + ["--json"]) == 0
    rows = {Path(r["folder"]).name: r for r in json.loads(capsys.readouterr().out)}
    report = json.loads((folders[1] / "pass_report.json").read_text(encoding="utf-8"))
    int8 = rows["int8"]
    assert int8["tokens_per_second"] == report["tokens_per_second"]["after"]
    assert int8["speedup"] == report["tokens_per_second"]["speedup"]
    assert int8["agreement_percent"] == report["agreement"]["identical_percent"]
    assert int8["bleu"] == report["quality"]["after"]["bleu"]
    assert int8["bytes_on_disk"] < rows[folders[0].name]["bytes_on_disk"]
    # the port's own speed and BLEU: the int8 pass measured them (its "before" side)
    port = rows[folders[0].name]
    assert port["tokens_per_second"] == report["tokens_per_second"]["before"]
    assert port["bleu"] == report["quality"]["before"]["bleu"]
    assert rows["fp16"]["tokens_per_second"] is None and rows["fp16"]["bleu"] is None


def test_plot_is_a_png(folders: list[Path], tmp_path: Path, capsys) -> None:
    plot = tmp_path / "compare.png"
    assert _compare([str(f) for f in folders] + ["--plot", str(plot)]) == 0
    data = plot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    assert f"plot: {plot}" in capsys.readouterr().out
    assert _compare([str(folders[0]), "--plot", str(tmp_path / "missing" / "x.png")]) == 2
    # an existing file is replaced only with --force; a directory never
    assert _compare([str(folders[0]), "--plot", str(plot)]) == 2
    assert plot.read_bytes() == data
    assert _compare([str(folders[0]), "--plot", str(plot), "--force"]) == 0
    assert plot.read_bytes() != data and plot.read_bytes().startswith(PNG_MAGIC)
    assert _compare([str(folders[0]), "--plot", str(tmp_path), "--force"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.png"]  # no temporary file left


def test_a_folder_that_is_not_a_port_is_exit_2(tmp_path: Path) -> None:
    assert _compare([str(tmp_path)]) == 2


def test_one_folder_given_as_a_string_is_one_folder(ported_default) -> None:
    """`compare("ported")` read each character of the name as a folder."""
    from modelport.passes.compare import compare

    assert [r.label for r in compare(str(ported_default.path))] == [ported_default.path.name]
    assert [r.label for r in compare(ported_default.path)] == [ported_default.path.name]
