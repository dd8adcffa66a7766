"""A hostile or broken Hub endpoint (issue #12, item 10): an answer without
the expected fields and an endpoint that never answers both end `publish`
with exit 2 and one line, in bounded time, without the token. The Hub
stand-in is tests/hub/test_publish.py's FakeHub (127.0.0.1 only) with its request
handler replaced."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error
from tests.hub.test_publish import TOKEN, FakeHub


@pytest.fixture
def hub_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.mark.parametrize("empty", ["every request", "the commit"])
def test_publish_empty_json_answers_are_one_line(empty: str, ported_default, hub_env, capsys) -> None:
    """A server answering 200 with `{}`: to every request (the repo creation
    then lacks `url`), or only to the commit (which then lacks `commitUrl`)."""
    with FakeHub() as hub:
        base = hub.server.RequestHandlerClass

        class Empty(base):
            def do_POST(self) -> None:  # noqa: N802
                if empty == "the commit" and "/commit/" not in self.path:
                    return super().do_POST()
                self._record(self._body())
                self._send(200, {})

            def do_GET(self) -> None:  # noqa: N802
                if empty == "the commit":
                    return super().do_GET()
                self._record(b"")
                self._send(200, {})

        hub.server.RequestHandlerClass = Empty
        line = one_line_error(["publish", str(ported_default.path), "me/empty", "--endpoint", hub.url], capsys)
    assert line.startswith("modelport: error: publishing to `me/empty` failed: ")
    assert "unexpected answer" in line
    assert TOKEN not in line


def test_publish_endpoint_that_never_answers_times_out(ported_default, tmp_path: Path) -> None:
    """The server accepts the connection and reads the request, then says
    nothing: publish gives up after MODELPORT_HUB_TIMEOUT seconds, exit 2."""
    release = threading.Event()
    with FakeHub() as hub:
        base = hub.server.RequestHandlerClass

        class Silent(base):
            def do_POST(self) -> None:  # noqa: N802
                self._body()
                release.wait(120)

            do_GET = do_POST
            do_HEAD = do_POST

        hub.server.RequestHandlerClass = Silent
        env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "hf_home"), "MODELPORT_HUB_TIMEOUT": "2"}
        env.pop("HF_HUB_OFFLINE", None)
        code = "import sys; from modelport.cli import main; sys.exit(main(sys.argv[1:]))"
        start = time.monotonic()
        try:
            proc = subprocess.run([sys.executable, "-c", code, "publish", str(ported_default.path), "me/silent",
                                   "--endpoint", hub.url], capture_output=True, text=True, timeout=60, env=env)
        finally:
            release.set()
        elapsed = time.monotonic() - start
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelport: error: publishing to `me/silent` failed: "), lines
    assert "did not answer within 2 s" in lines[0]
    assert TOKEN not in proc.stderr
    assert elapsed < 45  # imports and card generation included; the wait itself is 2 s


def test_publish_timeout_option_must_be_positive(ported_default, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        from modelport.cli import main

        main(["publish", str(ported_default.path), "me/x", "--timeout", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("modelport: error: `--timeout` must be a number > 0") and err.count("\n") == 1


@pytest.fixture(scope="module")
def hf_export(ported_default, tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    from modelport.exporters.hf import export_hf

    out = tmp_path_factory.mktemp("publish") / "hf"
    export_hf(ported_default.path, out, verify=False)
    return out


def _damaged_copy(folder: Path, tmp_path: Path, name: str, data: bytes | None = None, edit=None) -> Path:
    import json
    import shutil

    copy = tmp_path / folder.name
    shutil.copytree(folder, copy)
    if edit is not None:
        record = json.loads((copy / name).read_text(encoding="utf-8"))
        edit(record)
        data = json.dumps(record).encode("utf-8")
    (copy / name).write_bytes(data)
    return copy


@pytest.mark.parametrize("name,data,said", [
    ("parity_report.md", b"# Parity\n\xff\xfe not UTF-8\n", "parity_report.md` must be UTF-8 text, but has byte 0xff"),
    ("pass_report.md", b"\x80", "pass_report.md` must be UTF-8 text, but has byte 0x80"),
])
def test_publish_dry_run_of_a_port_with_a_damaged_report_is_one_line(name: str, data: bytes, said: str,
                                                                     ported_default, tmp_path: Path, capsys) -> None:
    folder = _damaged_copy(ported_default.path, tmp_path, name, data)
    assert said in one_line_error(["publish", str(folder), "me/model", "--dry-run"], capsys)


@pytest.mark.parametrize("damage,said", [
    ({"data": b"\xff{}"}, "export_report.json` is not valid JSON"),
    ({"edit": lambda r: r.update(ported_dir=5)}, "`ported_dir` must be a string, not int"),
    ({"edit": lambda r: r.update(ported_dir="/gone", model_class=["x"])}, "`model_class` must be a string"),
])
def test_publish_dry_run_of_a_damaged_export_report_is_one_line(damage: dict, said: str, hf_export: Path,
                                                                tmp_path: Path, capsys) -> None:
    folder = _damaged_copy(hf_export, tmp_path, "export_report.json", **damage)
    assert said in one_line_error(["publish", str(folder), "me/model", "--dry-run"], capsys)


def test_publish_dry_run_of_an_export_whose_card_is_not_utf8_is_one_line(hf_export: Path, tmp_path: Path,
                                                                         capsys) -> None:
    """Its ported folder is gone: the export's own README.md is what would be uploaded."""
    folder = _damaged_copy(hf_export, tmp_path, "export_report.json", edit=lambda r: r.update(ported_dir="/gone"))
    (folder / "README.md").write_bytes(b"---\nlicense: mit\n---\n\xe9t\xe9\n")
    line = one_line_error(["publish", str(folder), "me/model", "--dry-run"], capsys)
    assert "README.md` must be UTF-8 text, but has byte 0xe9" in line
