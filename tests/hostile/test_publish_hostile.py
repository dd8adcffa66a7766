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
