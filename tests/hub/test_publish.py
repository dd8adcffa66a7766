"""Publishing through huggingface_hub to a local stand-in for the subset of
the Hugging Face Hub API that huggingface_hub 2.x uses to create a repo,
commit regular files, upload large files through the Git LFS batch protocol
("basic" transfer: batch request, PUT to the returned URL, verify) and
download a snapshot. The server records every request so the tests assert
what arrived, and that the token travelled only in the Authorization header.

huggingface_hub uploads large files through Xet instead when ``hf_xet`` is
installed; Xet needs a content-addressed storage service this stand-in does
not implement, so the large-file test switches Xet off and exercises LFS,
the protocol every Hub endpoint still accepts."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from huggingface_hub import ModelCard

REPO = r"([^/]+/[^/]+)"


@dataclass
class Repo:
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    commits: list[dict[str, Any]] = field(default_factory=list)
    sha: str = "0" * 40


class FakeHub:
    """``fail`` maps a route name ("create", "preupload", "commit",
    "lfs-upload") to an HTTP status the server answers instead; ``echo_token``
    puts the received Authorization value into error messages (a hostile
    server); files of ``lfs_threshold`` bytes or more are answered
    ``uploadMode: lfs`` at preupload, as the Hub does for large files."""

    def __init__(self, lfs_threshold: int | None = None) -> None:
        self.repos: dict[str, Repo] = {}
        self.lfs_threshold = lfs_threshold
        self.lfs_objects: dict[str, bytes] = {}  # sha256 hex -> bytes received by PUT
        self.lfs_verified: list[str] = []
        self.requests: list[dict[str, Any]] = []
        self.fail: dict[str, int] = {}
        self.echo_token = False
        self.validated_yaml: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def _send(self, status: int, payload: Any = None, headers: dict[str, str] | None = None,
                      raw: bytes | None = None, head: bool = False) -> None:
                data = raw if raw is not None else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if raw is not None
                                 else "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def _error(self, status: int, message: str, code: str | None = None) -> None:
                if hub.echo_token:
                    message += f" (got {self.headers.get('Authorization')})"
                headers = {"X-Error-Message": message}
                if code:
                    headers["X-Error-Code"] = code
                self._send(status, {"error": message}, headers)

            def _record(self, body: bytes) -> None:
                hub.requests.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers.items()), "body": body})

            def do_POST(self) -> None:  # noqa: N802
                body = self._body()
                self._record(body)
                path = urlsplit(self.path).path
                if path == "/api/repos/create":
                    if "create" in hub.fail:
                        return self._error(hub.fail["create"], "creating repos is not allowed here")
                    req = json.loads(body)
                    repo_id = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                    if repo_id in hub.repos:  # the Hub answers 409 with the repo's url
                        return self._send(409, {"error": "You already created this model repo",
                                                "url": f"http://{self.headers['Host']}/{repo_id}"})
                    hub.repos[repo_id] = Repo(private=req.get("visibility") == "private")
                    return self._send(200, {"url": f"http://{self.headers['Host']}/{repo_id}"})
                if path == "/api/validate-yaml":
                    hub.validated_yaml.append(json.loads(body)["content"])
                    return self._send(200, {"warnings": []})
                if m := re.fullmatch(rf"/api/models/{REPO}/preupload/(.+)", path):
                    if "preupload" in hub.fail:
                        return self._error(hub.fail["preupload"], "preupload refused")
                    if m.group(1) not in hub.repos:
                        return self._error(404, "Repository not found", "RepoNotFound")
                    files = json.loads(body)["files"]
                    big = hub.lfs_threshold
                    return self._send(200, {"files": [
                        {"path": f["path"], "shouldIgnore": False,
                         "uploadMode": "lfs" if big is not None and f["size"] >= big else "regular"}
                        for f in files]})
                if m := re.fullmatch(rf"/{REPO}\.git/info/lfs/objects/batch", path):
                    req = json.loads(body)
                    assert req["operation"] == "upload" and "basic" in req["transfers"]
                    base = f"http://{self.headers['Host']}"
                    objects = []
                    for obj in req["objects"]:
                        entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                        if obj["oid"] not in hub.lfs_objects:  # already stored: nothing to do
                            entry["actions"] = {"upload": {"href": f"{base}/lfs-upload/{obj['oid']}"},
                                                "verify": {"href": f"{base}/lfs-verify"}}
                        objects.append(entry)
                    return self._send(200, {"transfer": "basic", "objects": objects})
                if path == "/lfs-verify":
                    req = json.loads(body)
                    if req["oid"] not in hub.lfs_objects or len(hub.lfs_objects[req["oid"]]) != req["size"]:
                        return self._error(422, "object not uploaded")
                    hub.lfs_verified.append(req["oid"])
                    return self._send(200, {})
                if m := re.fullmatch(rf"/api/models/{REPO}/commit/(.+)", path):
                    repo_id, rev = m.group(1), unquote(m.group(2))
                    if "commit" in hub.fail:
                        return self._error(hub.fail["commit"], "commit rejected")
                    if repo_id not in hub.repos:
                        return self._error(404, "Repository not found", "RepoNotFound")
                    if rev != "main":
                        return self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
                    repo = hub.repos[repo_id]
                    commit: dict[str, Any] = {"files": {}}
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "header":
                            commit["summary"] = item["value"]["summary"]
                        elif item["key"] == "file":
                            assert item["value"]["encoding"] == "base64"
                            commit["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                        elif item["key"] == "lfsFile":
                            assert item["value"]["algo"] == "sha256"
                            oid = item["value"]["oid"]
                            if oid not in hub.lfs_objects:
                                return self._error(422, f"LFS object {oid} was never uploaded")
                            commit["files"][item["value"]["path"]] = hub.lfs_objects[oid]
                            repo.lfs_paths.add(item["value"]["path"])
                        else:
                            raise AssertionError(f"unexpected commit entry {item['key']}")
                    repo.files.update(commit["files"])
                    repo.commits.append(commit)
                    repo.sha = hashlib.sha1(repr(sorted(repo.files.items())).encode()).hexdigest()
                    return self._send(200, {"commitUrl": f"http://{self.headers['Host']}/{repo_id}/commit/"
                                                         f"{repo.sha}", "commitOid": repo.sha,
                                            "pullRequestUrl": None})
                self._error(404, f"no route {path}")

            def _get(self, head: bool) -> None:
                self._record(b"")
                path = urlsplit(self.path).path
                if m := re.fullmatch(rf"/api/models/{REPO}(?:/revision/(.+))?", path):
                    repo = hub.repos.get(m.group(1))
                    if repo is None or "create" in hub.fail:
                        return self._error(hub.fail.get("create", 404), "Repository not found", "RepoNotFound")
                    return self._send(200, {"id": m.group(1), "sha": repo.sha, "private": repo.private,
                                            "siblings": [{"rfilename": p} for p in sorted(repo.files)]}, head=head)
                if m := re.fullmatch(rf"/api/models/{REPO}/tree/([^/]+)(/.*)?", path):
                    repo = hub.repos[m.group(1)]
                    return self._send(200, [{"type": "file", "path": p, "size": len(b),
                                             "oid": hashlib.sha1(b).hexdigest()}
                                            for p, b in sorted(repo.files.items())], head=head)
                if m := re.fullmatch(rf"/{REPO}/resolve/([^/]+)/(.+)", path):
                    repo = hub.repos.get(m.group(1))
                    name = unquote(m.group(3))
                    if repo is None or name not in repo.files:
                        return self._error(404, "Entry not found", "EntryNotFound")
                    data = repo.files[name]
                    headers = {"X-Repo-Commit": repo.sha, "ETag": f'"{hashlib.sha1(data).hexdigest()}"'}
                    if name in repo.lfs_paths:  # the Hub names LFS files by their sha256
                        headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                                        "X-Linked-Size": str(len(data))})
                    return self._send(200, raw=data, head=head, headers=headers)
                self._error(404, f"no route {path}")

            def do_PUT(self) -> None:  # noqa: N802
                body = self._body()
                self._record(body)
                m = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", urlsplit(self.path).path)
                if m is None:
                    return self._error(404, f"no route {self.path}")
                if "lfs-upload" in hub.fail:
                    return self._error(hub.fail["lfs-upload"], "storage refused the upload")
                if hashlib.sha256(body).hexdigest() != m.group(1):
                    return self._error(400, "sha256 mismatch")
                hub.lfs_objects[m.group(1)] = body
                self._send(200, {})

            def do_GET(self) -> None:  # noqa: N802
                self._get(head=False)

            def do_HEAD(self) -> None:  # noqa: N802
                self._get(head=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------
# tests

TOKEN = "hf_modelportTestToken0123456789"


@pytest.fixture
def hf_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The token from HF_TOKEN (the usual place); no stored login, no cache leaks."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)


@pytest.fixture
def hub():
    with FakeHub() as h:
        yield h


@pytest.fixture
def lfs_hub(monkeypatch: pytest.MonkeyPatch):
    """A Hub that wants every file of 64 KiB or more through LFS; Xet switched off."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    with FakeHub(lfs_threshold=64 * 1024) as h:
        yield h


def _folder_files(directory: Path) -> dict[str, bytes]:
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


def _assert_uploaded_as(uploaded: bytes, local: bytes, name: str) -> None:
    """A file arrives byte for byte, except the records of local paths: their sanitized copies."""
    from modelport.hub import sanitize_record

    if name in ("conversion.json", "export_report.json", "parity_report.json", "pass_report.json"):
        assert json.loads(uploaded) == sanitize_record(json.loads(local)), name
    else:
        assert uploaded == local, name


def _assert_token_only_in_header(hub: FakeHub) -> None:
    assert hub.requests
    for req in hub.requests:
        assert TOKEN not in req["path"]
        assert TOKEN.encode() not in req["body"]
        for name, value in req["headers"].items():
            if name.lower() == "authorization":
                assert value == f"Bearer {TOKEN}"
            else:
                assert TOKEN not in value, name
    writes = [r for r in hub.requests if r["method"] == "POST"]
    for r in writes:
        auth = [v for k, v in r["headers"].items() if k.lower() == "authorization"]
        assert auth == [f"Bearer {TOKEN}"], r["path"]


def test_publish_uploads_folder_and_card_in_one_commit(ported_default, hub: FakeHub, hf_env, capsys) -> None:
    from modelport.cli import main

    before = _folder_files(ported_default.path)
    rc = main(["publish", str(ported_default.path), "me/tiny-en-de", "--private", "--commit-message",
               "first port", "--endpoint", hub.url, "--license", "mit"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert TOKEN not in out + err
    repo = hub.repos["me/tiny-en-de"]
    assert repo.private is True
    assert len(repo.commits) == 1 and repo.commits[0]["summary"] == "first port"
    # every file of the folder arrived byte for byte (conversion.json with local paths reduced), plus the card
    assert set(repo.files) == set(before) | {"README.md"}
    for name, data in before.items():
        _assert_uploaded_as(repo.files[name], data, name)
    card = ModelCard(repo.files["README.md"].decode())
    assert card.data.license == "mit" and card.data.language == ["en", "de"]
    assert hub.validated_yaml == [repo.files["README.md"].decode()]
    # the local folder was not modified
    assert _folder_files(ported_default.path) == before
    _assert_token_only_in_header(hub)


def _copy_folder(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_card_written_by_hand_on_the_hub_is_kept(ported_default, hub: FakeHub, hf_env, tmp_path: Path,
                                                   capsys) -> None:
    """publish replaced the repo's README.md with the generated card: a card written on the Hub was overwritten."""
    from modelport.cli import main
    from tests.helpers.cli import one_line_error

    assert main(["publish", str(ported_default.path), "me/kept", "--endpoint", hub.url]) == 0
    ours = hub.repos["me/kept"].files["README.md"]
    assert main(["publish", str(ported_default.path), "me/kept", "--endpoint", hub.url, "--license", "mit"]) == 0
    assert hub.repos["me/kept"].files["README.md"] != ours  # a card modelport wrote is refreshed
    hand = b"# My model\n\nWritten on the Hub.\n"
    hub.repos["me/kept"].files["README.md"] = hand
    capsys.readouterr()
    line = one_line_error(["publish", str(ported_default.path), "me/kept", "--endpoint", hub.url], capsys)
    assert line == ("modelport: error: output `me/kept/README.md` at revision `main` already exists on the Hub "
                    "and is not a card modelport wrote (pass --force to overwrite it)"), line
    assert hub.repos["me/kept"].files["README.md"] == hand and len(hub.repos["me/kept"].commits) == 2
    assert main(["publish", str(ported_default.path), "me/kept", "--endpoint", hub.url, "--force"]) == 0
    assert b"model card written by `modelport card`" in hub.repos["me/kept"].files["README.md"]
    # a card too large to read is not read, whatever it holds: kept unless forced
    from modelport.hub import MAX_HUB_CARD_BYTES

    hub.repos["me/kept"].files["README.md"] += b"x" * MAX_HUB_CARD_BYTES
    capsys.readouterr()
    assert "already exists on the Hub" in one_line_error(
        ["publish", str(ported_default.path), "me/kept", "--endpoint", hub.url], capsys)


def test_a_folders_card_written_by_hand_is_uploaded_as_it_is(ported_default, hub: FakeHub, hf_env, tmp_path: Path,
                                                              capsys) -> None:
    """publish uploaded the generated card instead of the folder's own README.md (the user's card never arrived)."""
    from modelport.cli import main
    from tests.helpers.cli import one_line_error

    folder = _copy_folder(ported_default.path, tmp_path / "port")
    hand = b"# My port\n\nWritten by hand.\n"
    (folder / "README.md").write_bytes(hand)
    assert main(["publish", str(folder), "me/own", "--endpoint", hub.url]) == 0
    assert hub.repos["me/own"].files["README.md"] == hand
    assert main(["publish", str(folder), "me/own", "--endpoint", hub.url]) == 0  # the same card: no conflict
    line = one_line_error(["publish", str(folder), "me/own", "--endpoint", hub.url, "--license", "mit"], capsys)
    assert "was not written by modelport and is uploaded as it is, so --license would change nothing" in line
    assert main(["publish", str(folder), "me/own", "--endpoint", hub.url, "--force", "--license", "mit"]) == 0
    assert ModelCard(hub.repos["me/own"].files["README.md"].decode()).data.license == "mit"
    assert (folder / "README.md").read_bytes() == hand  # the folder is never modified


@pytest.mark.parametrize("repo_id", ["not a repo", "a/b/c", "me/na--me"])
@pytest.mark.parametrize("dry_run", [True, False])
def test_a_repo_id_the_hub_would_refuse_is_refused_first(repo_id: str, dry_run: bool, ported_default,
                                                         hub: FakeHub, hf_env, capsys) -> None:
    """A dry run listed the files to upload for such an id; the upload then failed."""
    from tests.helpers.cli import one_line_error

    line = one_line_error(["publish", str(ported_default.path), repo_id, "--endpoint", hub.url,
                           *(["--dry-run"] if dry_run else [])], capsys)
    assert f"`{repo_id}` is not a valid Hub repository id: HFValidationError" in line
    assert hub.requests == []


def test_dry_run_lists_exactly_the_uploaded_files(ported_default, hub: FakeHub, hf_env, capsys) -> None:
    from modelport.cli import main
    from modelport.hub import publish

    rc = main(["publish", str(ported_default.path), "me/dry", "--dry-run", "--json", "--endpoint", hub.url])
    out, _ = capsys.readouterr()
    assert rc == 0
    listed = json.loads(out)["files"]
    assert hub.requests == []  # a dry run contacts nothing
    publish(ported_default.path, "me/dry", endpoint=hub.url)
    arrived = hub.repos["me/dry"].files
    assert {f["path"] for f in listed} == set(arrived)
    for f in listed:
        assert f["size"] == len(arrived[f["path"]])
        assert f["sha256"] == hashlib.sha256(arrived[f["path"]]).hexdigest()


@pytest.mark.parametrize("route,status", [("create", 401), ("create", 403), ("commit", 500), ("commit", 403)])
def test_hub_failures_exit_2_with_one_line(ported_default, hub: FakeHub, hf_env, capsys, route: str,
                                           status: int) -> None:
    from modelport.cli import main

    hub.fail[route] = status
    hub.echo_token = True  # a server that echoes credentials must not leak them through our error
    before = _folder_files(ported_default.path)
    rc = main(["publish", str(ported_default.path), "me/fail", "--endpoint", hub.url])
    out, err = capsys.readouterr()
    assert rc == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("modelport: error: publishing to `me/fail` failed")
    assert f"({status})" in err
    assert TOKEN not in err
    assert _folder_files(ported_default.path) == before
    _assert_token_only_in_header(hub)


def test_missing_revision_and_unreachable_endpoint(ported_default, hub: FakeHub, hf_env, capsys) -> None:
    from modelport.cli import main

    rc = main(["publish", str(ported_default.path), "me/rev", "--revision", "nope", "--endpoint", hub.url])
    err = capsys.readouterr().err
    assert rc == 2 and "revision `nope` does not exist" in err and err.count("\n") == 1
    # a port nobody listens on
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    rc = main(["publish", str(ported_default.path), "me/rev", "--endpoint", dead])
    err = capsys.readouterr().err
    assert rc == 2 and "cannot reach the Hub endpoint" in err and err.count("\n") == 1
    assert TOKEN not in err


def test_download_back_load_and_translate(ported_default, hub: FakeHub, hf_env, tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    import modelport
    from modelport.hub import publish

    publish(ported_default.path, "me/roundtrip", endpoint=hub.url)
    local = snapshot_download("me/roundtrip", endpoint=hub.url, cache_dir=tmp_path / "cache")
    loaded = modelport.load(local)
    lines = ["Hello world.", "The cat sleeps."]
    ours = [h[0]["tokens"] for h in loaded.translate(lines, beam=2)]
    orig = [h[0]["tokens"] for h in ported_default.translate(lines, beam=2)]
    assert ours == orig
    assert (Path(local) / "README.md").is_file()


def test_large_files_go_through_lfs(ported_default, lfs_hub: FakeHub, hf_env, tmp_path: Path) -> None:
    from huggingface_hub import snapshot_download

    import modelport
    from modelport.cli import main

    hub = lfs_hub
    before = _folder_files(ported_default.path)
    big = {name for name, data in before.items() if len(data) >= hub.lfs_threshold}
    assert "model.safetensors" in big
    assert main(["publish", str(ported_default.path), "me/large", "--endpoint", hub.url]) == 0
    repo = hub.repos["me/large"]
    # the large files travelled as LFS objects (PUT + verify), referenced by the one commit
    assert repo.lfs_paths == big and len(repo.commits) == 1
    assert sorted(hub.lfs_verified) == sorted(hashlib.sha256(before[n]).hexdigest() for n in big)
    puts = [r for r in hub.requests if r["method"] == "PUT"]
    assert len(puts) == len(big)
    for name, data in before.items():
        _assert_uploaded_as(repo.files[name], data, name)
    _assert_token_only_in_header(hub)
    # a second publish of the same bytes uploads nothing again
    assert main(["publish", str(ported_default.path), "me/large", "--endpoint", hub.url]) == 0
    assert len([r for r in hub.requests if r["method"] == "PUT"]) == len(big)
    local = snapshot_download("me/large", endpoint=hub.url, cache_dir=tmp_path / "cache")
    lines = ["The cat sleeps."]
    assert ([h[0]["tokens"] for h in modelport.load(local).translate(lines, beam=2)]
            == [h[0]["tokens"] for h in ported_default.translate(lines, beam=2)])


def test_large_file_upload_failure_exit_2(ported_default, lfs_hub: FakeHub, hf_env, capsys) -> None:
    from modelport.cli import main

    lfs_hub.fail["lfs-upload"] = 403  # (a 5xx is retried for half a minute first)
    rc = main(["publish", str(ported_default.path), "me/large-fail", "--endpoint", lfs_hub.url])
    out, err = capsys.readouterr()
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("modelport: error: publishing to `me/large-fail` failed")
    assert TOKEN not in err
    assert lfs_hub.repos["me/large-fail"].commits == []  # nothing committed


def test_publish_a_transformers_export(ported_default, hub: FakeHub, hf_env, tmp_path: Path) -> None:
    """`export hf` then `publish`: the Hub repo loads with transformers' Auto
    classes and decodes like the port under hf semantics."""
    pytest.importorskip("transformers")
    from huggingface_hub import snapshot_download
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from modelport.cli import main
    from modelport.exporters.hf import export_hf
    from modelport.generation import generate

    export_hf(ported_default.path, tmp_path / "hf")
    exported = _folder_files(tmp_path / "hf")
    assert main(["publish", str(tmp_path / "hf"), "me/fsmt", "--endpoint", hub.url, "--license", "mit"]) == 0
    repo = hub.repos["me/fsmt"]
    assert set(repo.files) == set(exported)
    for name, data in exported.items():
        if name != "README.md":
            _assert_uploaded_as(repo.files[name], data, name)
    card = ModelCard(repo.files["README.md"].decode())
    assert card.data.license == "mit" and card.data.library_name == "transformers"
    assert 'from_pretrained("me/fsmt")' in card.text and "path/to/this/folder" not in card.text
    local = snapshot_download("me/fsmt", endpoint=hub.url, cache_dir=tmp_path / "cache")
    tok = AutoTokenizer.from_pretrained(local)
    model = AutoModelForSeq2SeqLM.from_pretrained(local).eval()
    line = "The cat sleeps."
    ids = tok(line, return_tensors="pt").input_ids
    assert ids[0].tolist() == ported_default.tokenizer.encode(line)
    out = model.generate(ids, num_beams=4, max_new_tokens=20, early_stopping=True)[0].tolist()
    ours = generate(ported_default.models, [ids[0].tolist()], semantics="hf", num_beams=4, max_new_tokens=20,
                    early_stopping=True, forced_eos_token_id=2)[0][0]["tokens"]
    assert [t for t in out[1:] if t != model.config.pad_token_id] == ours


def test_publishing_an_onnx_export_is_refused(ported_default, hub: FakeHub, hf_env, tmp_path: Path, capsys) -> None:
    """Its card would describe a port or a transformers folder, neither of which it is."""
    pytest.importorskip("onnxruntime")
    from tests.helpers.cli import one_line_error

    from modelport.exporters.onnx import export_onnx

    export_onnx(ported_default.path, tmp_path / "onnx", verify=False)
    line = one_line_error(["publish", str(tmp_path / "onnx"), "me/onnx", "--endpoint", hub.url], capsys)
    assert "`modelport export onnx` folder" in line
    assert hub.requests == []


def test_published_folder_holds_no_local_path(ported_default, hub: FakeHub, hf_env, tmp_path: Path, capsys) -> None:
    """conversion.json, the parity report (JSON and Markdown) and the card
    name no directory of the publisher's machine; the local folder keeps its
    own records unchanged; the card loads the repo id; model-index only with
    a named evaluation dataset."""
    import shutil

    from modelport.cli import main
    from tests.helpers.paths import ROOT

    folder = tmp_path / "tiny-en-de"
    shutil.copytree(ported_default.path, folder)
    parity = {"meta": {"ported_dir": str(folder), "reference": str(ROOT / "assets" / "default-model"), "lines": 4,
                       "semantics": "fairseq", "options": {"beam": 5}, "notes": [f"see {folder}/notes.txt"]},
              "bleu": {"modelport": {"bleu": 70.1, "chrf": 89.2}, "reference": {"bleu": 70.1, "chrf": 89.2},
                       "passed": True},
              "passed": True}
    (folder / "parity_report.json").write_text(json.dumps(parity), encoding="utf-8")
    (folder / "parity_report.md").write_text(f"| ported_dir | {folder} |\n", encoding="utf-8")
    before = _folder_files(folder)
    assert str(ROOT).encode() in before["conversion.json"]  # converted from an absolute path
    assert main(["publish", str(folder), "me/clean", "--endpoint", hub.url]) == 0
    capsys.readouterr()
    repo = hub.repos["me/clean"]
    for name, data in repo.files.items():
        for prefix in (str(tmp_path), str(ROOT), str(Path(tmp_path).parent)):
            assert prefix.encode() not in data, (name, prefix)
    conv = json.loads(repo.files["conversion.json"])
    assert conv["source"] == "default-model" and {f["path"] for f in conv["source_files"]} == \
        {f["name"] for f in conv["source_files"]}
    assert json.loads(repo.files["parity_report.json"])["meta"]["reference"] == "default-model"
    assert _folder_files(folder) == before  # the local folder is not modified
    card = ModelCard(repo.files["README.md"].decode())
    assert 'modelport.load("me/clean")' in card.text
    assert not card.data.eval_results and "model-index" not in repo.files["README.md"].decode()
    assert "| modelport | BLEU 70.10, chrF 89.20 |" in card.text  # the parity summary, in the text
    # a dry run lists the sanitized copies' sizes and hashes
    assert main(["publish", str(folder), "me/clean", "--dry-run", "--json", "--eval-dataset", "wmt19"]) == 0
    listed = {f["path"]: f for f in json.loads(capsys.readouterr().out)["files"]}
    assert listed["conversion.json"]["size"] == len(repo.files["conversion.json"])
    assert main(["publish", str(folder), "me/evaluated", "--endpoint", hub.url, "--eval-dataset", "wmt19"]) == 0
    evaluated = ModelCard(hub.repos["me/evaluated"].files["README.md"].decode())
    assert {r.dataset_name for r in evaluated.data.eval_results} == {"wmt19"}
