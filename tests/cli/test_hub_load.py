"""A ported folder named by its Hub repo id: ``modelport.load("org/name")``
and every command that takes a ported folder download it with
huggingface_hub's ``snapshot_download`` (its cache, offline mode, endpoint),
against the local stand-in for the Hub that the publish tests use
(tests/hub/test_publish.py's ``FakeHub``, which answers the download
endpoints ``/api/models/{repo}/revision/{rev}``, ``.../tree/...`` and
``/{repo}/resolve/{rev}/{file}``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from huggingface_hub import constants

from modelport.cli import main
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS
from tests.hub.test_publish import FakeHub, Repo

REPO_ID = "me/tiny-en-de"


def _lines(n: int, tmp_path: Path) -> Path:
    path = tmp_path / "in.en"
    path.write_text("".join((CORPUS / "test.en").read_text(encoding="utf-8").splitlines(True)[:n]), encoding="utf-8")
    return path


@pytest.fixture
def hub(ported_default, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """A fake Hub holding the embedded model's port as REPO_ID; huggingface_hub
    pointed at it (HF_ENDPOINT) with a cache of its own (HF_HUB_CACHE), online."""
    with FakeHub() as h:
        files = {p.relative_to(ported_default.path).as_posix(): p.read_bytes()
                 for p in ported_default.path.rglob("*") if p.is_file()}
        h.repos[REPO_ID] = Repo(private=False, files=files,
                                sha=hashlib.sha1(repr(sorted(files.items())).encode()).hexdigest())
        # what HF_ENDPOINT sets when huggingface_hub is imported (it is, already)
        monkeypatch.setattr(constants, "ENDPOINT", h.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                            h.url + "/{repo_id}/resolve/{revision}/{filename}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield h


def _translate(source: str, data: Path, capsys, *extra: str) -> list[str]:
    rc = main(["translate", source, "-i", str(data), *extra])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out.splitlines()


def test_translate_by_repo_id_prints_what_the_local_folder_prints(ported_default, hub: FakeHub, tmp_path: Path,
                                                                 capsys) -> None:
    data = _lines(12, tmp_path)
    local = _translate(str(ported_default.path), data, capsys)
    assert hub.requests == []  # a local folder never asks the Hub
    remote = _translate(REPO_ID, data, capsys)
    assert remote == local and len(local) == 12
    paths = [r["path"] for r in hub.requests]
    assert f"/api/models/{REPO_ID}/revision/main" in paths
    assert any(p.startswith(f"/{REPO_ID}/resolve/") and p.endswith("/model.safetensors") for p in paths)
    # the snapshot is in huggingface_hub's cache: offline, it is read from there
    constants.HF_HUB_OFFLINE = True
    hub.requests.clear()
    assert _translate(REPO_ID, data, capsys) == local
    assert hub.requests == []


def test_load_by_repo_id_and_revision(ported_default, hub: FakeHub) -> None:
    import modelport

    ported = modelport.load(REPO_ID, revision="v1.0")
    assert f"/api/models/{REPO_ID}/revision/v1.0" in [r["path"] for r in hub.requests]
    assert Path(constants.HF_HUB_CACHE) in ported.path.parents
    assert ported.translate(["Hello world!"])[0][0].text == ported_default.translate(["Hello world!"])[0][0].text


def test_revision_reaches_the_hub(hub: FakeHub, tmp_path: Path, capsys) -> None:
    _translate(REPO_ID, _lines(1, tmp_path), capsys, "--revision", "v2")
    assert f"/api/models/{REPO_ID}/revision/v2" in [r["path"] for r in hub.requests]


def test_a_pass_reads_a_repo_id(hub: FakeHub, tmp_path: Path, capsys) -> None:
    rc = main(["quantize", REPO_ID, str(tmp_path / "int8"), "--mode", "int8"])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert (tmp_path / "int8" / "config.json").is_file()


def test_inspect_a_repo_id(hub: FakeHub, capsys) -> None:
    rc = main(["inspect", REPO_ID, "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert '"source_format": "fairseq"' in out


@pytest.mark.parametrize("argv, expected", [
    (["translate", "me/no-such-repo"], "neither a local folder nor a repository"),
    (["export", "onnx", "me/no-such-repo", "out"], "neither a local folder nor a repository"),
    (["translate", "not-a-folder"], "`not-a-folder` does not exist"),
    (["translate", "a/b/c"], "`a/b/c` does not exist"),
])
def test_a_missing_repo_is_one_line(hub: FakeHub, argv: list[str], expected: str, capsys) -> None:
    line = one_line_error(argv, capsys)
    assert expected in line


def test_offline_with_nothing_cached_is_one_line(hub: FakeHub, capsys) -> None:
    constants.HF_HUB_OFFLINE = True
    line = one_line_error(["translate", REPO_ID], capsys)
    assert "HF_HUB_OFFLINE" in line and REPO_ID in line
    assert hub.requests == []


def test_unreachable_hub_is_one_line(hub: FakeHub, capsys) -> None:
    hub.server.shutdown()
    hub.server.server_close()
    constants.ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens
    constants.HUGGINGFACE_CO_URL_TEMPLATE = constants.ENDPOINT + "/{repo_id}/resolve/{revision}/{filename}"
    line = one_line_error(["translate", REPO_ID], capsys)
    assert "cannot be reached" in line


def test_revision_of_a_local_folder_is_refused(ported_default, capsys) -> None:
    line = one_line_error(["translate", str(ported_default.path), "--revision", "v1"], capsys)
    assert "`revision` applies to a Hub repo id" in line


def test_validate_a_repo_id_needs_report_dir(hub: FakeHub, tmp_path: Path, capsys) -> None:
    line = one_line_error(["validate", REPO_ID, "--reference", "x", "--data", str(_lines(1, tmp_path))], capsys)
    assert "--report DIR" in line
