"""The layer order of docs/architecture.md, checked on the import graph.

The contracts live in pyproject.toml (``[tool.importlinter]``) and are run by
import-linter; these tests run them, prove they fail when an arrow back up is
added, and check what import-linter does not: no import cycle inside a
package, and the bottom layer imports no torch when actually imported.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=root,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, timeout=300)


def test_contracts_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize("module, arrow", [
    ("model/io.py", "from modelport.api import load"),  # model -> api: up
    ("converters/base.py", "import modelport.validators.run"),  # converters -> validators: up
    ("passes/common.py", "from modelport.exporters import REPORT_NAME"),  # passes -> exporters: sideways
    ("generation/beam.py", "import transformers"),  # a reference framework outside validators/exporters
])
def test_an_arrow_back_up_fails(tmp_path: Path, module: str, arrow: str) -> None:
    shutil.copytree(ROOT / "modelport", tmp_path / "modelport",
                    ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "modelport" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n\ndef _added():\n    {arrow}\n",
                      encoding="utf-8")
    result = _lint(tmp_path)
    assert result.returncode == 1, result.stdout[-2000:]
    assert "BROKEN" in result.stdout


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph.modules:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def test_no_import_cycle() -> None:
    graph = grimp.build_graph("modelport", cache_dir=None)
    # a package's __init__ re-exporting its own modules is not a cycle between modules
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if module.startswith(imported + ".") or imported.startswith(module + "."):
                graph.remove_import(importer=module, imported=imported)
    assert _cycles(graph) == []


def test_bottom_layer_imports_no_torch() -> None:
    code = ("import sys, modelport, modelport.errors, modelport._version, modelport.reports, modelport.metrics; "
            "print(sorted(m for m in ('torch', 'numpy', 'transformers', 'fairseq') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
