"""Publish a ported folder to a Hugging Face Hub endpoint.

:func:`publish` regenerates the model card in memory (the local folder is
never modified), creates the repository if needed and uploads every file of
the folder plus the card in **one** commit through huggingface_hub. The token
comes from the argument or huggingface_hub's usual places (``HF_TOKEN``,
``hf auth login``); it is sent only in the Authorization header and never
appears in output, cards or errors: every failure is a :class:`HubError`
with one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path, PureWindowsPath
from typing import Any

from modelport._version import __version__
from modelport.errors import HubError, InvalidInputError, ModelportError, OutputExistsError
from modelport.exporters import REPORT_NAME
from modelport.files import not_a_folder, read_utf8_text
from modelport.model.folder import CARD_NAME, CONVERSION_NAME
from modelport.model.io import read_json
from modelport.modelcards.card import (LOCAL_PLACEHOLDER, card_text_by_modelport, check_repo_id, make_card,
                                       written_by_modelport)
from modelport.reports.export import HfExportReport
from modelport.reports.parity import PARITY_REPORT_STEM
from modelport.reports.passes import PASS_REPORT_STEM


# Seconds a Hub request may go unanswered (connect, each read, each write)
# before publish gives up; MODELPORT_HUB_TIMEOUT or ``timeout=`` change it.
DEFAULT_TIMEOUT = 30.0
TIMEOUT_ENV = "MODELPORT_HUB_TIMEOUT"


def hub_timeout(timeout: float | None = None) -> float:
    """``timeout``, else MODELPORT_HUB_TIMEOUT, else :data:`DEFAULT_TIMEOUT`: a number of seconds > 0."""
    where, value = "timeout", timeout
    if value is None:
        where, value = TIMEOUT_ENV, os.environ.get(TIMEOUT_ENV)
        if value is None or value == "":
            return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InvalidInputError(f"`{where}` must be a number of seconds > 0, but is {value!r}")
    return seconds


@contextlib.contextmanager
def _request_timeout(seconds: float) -> Iterator[None]:
    """Every request huggingface_hub makes meanwhile waits at most ``seconds``
    for the endpoint (its shared HTTP client has no timeout by default, so a
    server that never answers would hang publish forever)."""
    from huggingface_hub import get_session

    client = get_session()
    before = client.timeout
    client.timeout = type(before)(seconds)
    try:
        yield
    finally:
        client.timeout = before


def _timeout_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(name).TimeoutException)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


# JSON files that record local paths (provenance, reports): uploaded as sanitized copies
_PATH_RECORDS = (CONVERSION_NAME, REPORT_NAME, f"{PARITY_REPORT_STEM}.json", f"{PASS_REPORT_STEM}.json")
# Markdown renderings of those reports: uploaded with the same paths reduced
_PATH_TEXTS = (f"{PARITY_REPORT_STEM}.md", f"{PASS_REPORT_STEM}.md")
# keys whose value is a local path (or 'a.pt:b.pt' paths): reduced to the file name
_PATH_KEYS = frozenset({"source", "path", "ported_dir", "reference", "output_dir", "source_dir"})
# an absolute POSIX path (not part of a URL or a relative path), or a Windows one: reduced to its last part
_ABSOLUTE = re.compile(r"(?<![\w.:/~-])(?:/|[A-Za-z]:[\\/]|~/)(?:[^\s\"'`|,;:()\[\]{}<>]+[\\/])+"
                       r"([^\s\"'`|,;:()\[\]{}<>/\\]*)")


def _file_name(value: str) -> str:
    """A local path as its file name (each part of an 'a.pt:b.pt' list)."""
    if "/" not in value and "\\" not in value:
        return value
    return ":".join(PureWindowsPath(part).name or part for part in value.split(":"))


def sanitize_text(text: str) -> str:
    """``text`` with every absolute local path reduced to its last part."""
    return _ABSOLUTE.sub(lambda m: m.group(1), text)


def sanitize_record(data: Any, key: str | None = None) -> Any:
    """A JSON value with local paths removed: values of path keys (``source``,
    ``path``, ``ported_dir``, ...) reduced to file names, absolute paths in
    any other string reduced to their last part. What a published folder
    records of where it was made on the publisher's machine: nothing."""
    if isinstance(data, dict):
        return {k: sanitize_record(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [sanitize_record(v, key) for v in data]
    if isinstance(data, str):
        return _file_name(data) if key in _PATH_KEYS else sanitize_text(data)
    return data


def _upload_bytes(path: Path, rel: str) -> bytes | None:
    """The sanitized bytes to upload for a file that records local paths; None: upload the file as it is."""
    if rel in _PATH_RECORDS:
        data = read_json(path)
        clean = sanitize_record(data)
        return None if clean == data else (json.dumps(clean, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    if rel in _PATH_TEXTS:
        text = read_utf8_text(path, f"`{path}`")
        clean_text = sanitize_text(text)
        return None if clean_text == text else clean_text.encode("utf-8")
    return None


def plan_upload(ported_dir: str | os.PathLike[str], repo_id: str | None = None, force: bool = False,
                **card_options: Any) -> tuple[list[dict[str, Any]], dict[str, bytes]]:
    """The files one commit would hold: ``[{path, size, sha256}]`` sorted by
    path, and the bytes of those uploaded from memory instead of the folder
    (``README.md``, the card regenerated for ``repo_id``, and sanitized
    copies of the files that record local paths: conversion.json and the
    reports, see :func:`sanitize_record`). The local folder is not modified.

    Hidden files and folders (temporary siblings, editor files) are skipped.
    A README.md modelport wrote is replaced by the regenerated card; one it
    did not write (a card written by hand) is uploaded as it is, unless
    ``force``, as ``modelport card`` keeps it.
    """
    directory = Path(ported_dir)
    card = _own_card(directory, card_options, force)
    if card is None:
        card = sanitize_text(str(_card(directory, repo_id, card_options))).encode("utf-8")
    contents = {CARD_NAME: card}
    files = [{"path": CARD_NAME, "size": len(card), "sha256": hashlib.sha256(card).hexdigest()}]
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file() or path.is_symlink():
            continue
        if rel.as_posix() == CARD_NAME:
            continue
        data = _upload_bytes(path, rel.as_posix())
        if data is None:
            files.append({"path": rel.as_posix(), "size": path.stat().st_size, "sha256": _sha256_file(path)})
        else:
            contents[rel.as_posix()] = data
            files.append({"path": rel.as_posix(), "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    files.sort(key=lambda f: f["path"])
    return files, contents


def _own_card(directory: Path, card_options: dict[str, Any], force: bool) -> bytes | None:
    """The folder's README.md when modelport did not write it and ``force`` is not given, else None."""
    path = directory / CARD_NAME
    if force or not os.path.lexists(path) or written_by_modelport(path):
        return None
    if path.is_symlink() or not path.is_file():
        raise InvalidInputError(f"`{path}` is not a regular file, so it cannot be uploaded as the card; remove it, "
                                "or pass --force to upload the generated card instead")
    given = [f"--{k.replace('_', '-')}" for k, v in card_options.items() if v is not None]
    if given:
        raise InvalidInputError(f"`{path}` was not written by modelport and is uploaded as it is, so "
                                f"{'/'.join(given)} would change nothing; edit it, or pass --force to upload the "
                                "generated card instead")
    return read_utf8_text(path, f"`{path}`").encode("utf-8")  # the Hub reads a card's metadata as UTF-8


# A card on the Hub larger than this is not read to see who wrote it: it is kept unless publish is forced
MAX_HUB_CARD_BYTES = 1 << 20


def _check_hub_card(api: Any, repo_id: str, revision: str | None, card: bytes, seconds: float) -> None:
    """Refuse to replace a README.md at ``revision`` of ``repo_id`` that modelport
    did not write (a card written on the Hub by hand) with ``card``; the same
    card, or one modelport wrote, is replaced."""
    import tempfile

    from huggingface_hub import hf_hub_url
    from huggingface_hub.errors import EntryNotFoundError

    try:
        meta = api.get_hf_file_metadata(url=hf_hub_url(repo_id, CARD_NAME, revision=revision, endpoint=api.endpoint),
                                        timeout=seconds)
    except EntryNotFoundError:
        return
    if meta.size is not None and meta.size <= MAX_HUB_CARD_BYTES:
        with tempfile.TemporaryDirectory(prefix="modelport-card-") as tmp:
            with open(api.hf_hub_download(repo_id, CARD_NAME, revision=revision, local_dir=tmp), "rb") as f:
                data = f.read(MAX_HUB_CARD_BYTES + 1)
        if data == card or card_text_by_modelport(data):
            return
    raise OutputExistsError(f"{repo_id}/{CARD_NAME}` at revision `{revision or 'main'}", option="force=True",
                            detail="on the Hub and is not a card modelport wrote")


def _hf_export_report(directory: Path) -> HfExportReport:
    """The report of the export in ``directory``, which must be an ``export hf`` one."""
    path = directory / REPORT_NAME
    data = read_json(path)
    target = data.get("target", "?") if isinstance(data, dict) else "?"
    if target != HfExportReport.target:
        raise InvalidInputError(f"`{directory}` is a `modelport export {target}` folder; "
                                "publish the ported folder or its `export hf` folder")
    try:
        return HfExportReport.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise InvalidInputError(f"`{path}` is not a report written by `modelport export hf` "
                                f"({type(e).__name__}: {e})") from None


def _card(directory: Path, repo_id: str | None, card_options: dict[str, Any]) -> Any:
    """The card to upload (its usage loads ``repo_id``). A transformers export
    (``modelport export hf``) gets the card of the port it came from, with
    transformers usage; when that folder is gone, its own README.md is
    uploaded with the repo id in its usage."""
    if not (directory / REPORT_NAME).is_file():
        return make_card(directory, repo_id=repo_id, **card_options)
    report = _hf_export_report(directory)
    source = Path(report.ported_dir)
    if (source / CONVERSION_NAME).is_file():
        return make_card(source, export=report, repo_id=repo_id, **card_options)
    if any(v is not None for v in card_options.values()):
        raise InvalidInputError(f"`{directory}` was exported from `{source}`, which no longer exists: its card "
                                "cannot be regenerated with --license/--language/--base-model")
    if not (directory / CARD_NAME).is_file():
        raise InvalidInputError(f"`{directory}` has no {CARD_NAME} and its ported folder `{source}` is gone")
    text = read_utf8_text(directory / CARD_NAME, f"`{directory / CARD_NAME}`")
    return text.replace(f'"{LOCAL_PLACEHOLDER}"', f'"{repo_id}"') if repo_id else text


def _scrub(text: str, secrets: list[str | None]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return " ".join(text.split())[:300]


def _network_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's error base (huggingface_hub 2.x: httpx2; 1.x: httpx)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            errors.append(__import__(name).HTTPError)
        except ImportError:
            pass
    return tuple(errors)


def _explain(err: Exception, repo_id: str, revision: str, secrets: list[str | None],
             timeout: float = DEFAULT_TIMEOUT) -> HubError:
    """One-line :class:`HubError` for a huggingface_hub / network failure."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError, \
        RevisionNotFoundError

    if isinstance(err, _timeout_errors()):
        return HubError(repo_id, f"the Hub endpoint did not answer within {timeout:g} s ({type(err).__name__}); "
                                 f"check the network or --endpoint, or wait longer with --timeout or {TIMEOUT_ENV}")
    if isinstance(err, (KeyError, TypeError, AttributeError)):
        # huggingface_hub reads the fields it expects from the JSON answer; a server that
        # is no Hub (or a broken one) answers without them
        missing = f" (no `{_scrub(str(err.args[0]), secrets)[:60]}`)" if isinstance(err, KeyError) and err.args else ""
        return HubError(repo_id, f"the Hub endpoint gave an unexpected answer{missing}; is --endpoint a Hugging "
                                 "Face Hub?")

    if isinstance(err, HFValidationError):
        return HubError(repo_id, f"`{repo_id}` is not a valid repository id (expected NAMESPACE/NAME)")
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        server = _scrub(err.server_message or "", secrets)
        detail = f" (server said: {server})" if server else ""
        if isinstance(err, RevisionNotFoundError):
            reason = f"revision `{revision}` does not exist (create the branch first, or omit --revision)"
        elif status == 401:
            reason = "the Hub refused the credentials (401): set HF_TOKEN or run `hf auth login` with a write token"
        elif status == 403:
            reason = "the token has no write access to this repository (403): use a write token for its namespace"
        elif isinstance(err, RepositoryNotFoundError) or status == 404:
            reason = f"repository or revision not found (404): check the repo id and that `{revision}` exists"
        elif status is not None and status >= 500:
            reason = f"the Hub rejected the commit with a server error ({status})"
        else:
            reason = f"the Hub rejected the request ({status})"
        return HubError(repo_id, reason + detail, status)
    if isinstance(err, _network_errors()):
        return HubError(repo_id, f"cannot reach the Hub endpoint ({type(err).__name__}: "
                                 f"{_scrub(str(err), secrets)}); check the network or --endpoint")
    return HubError(repo_id, _scrub(str(err).splitlines()[0] if str(err) else type(err).__name__, secrets))


def publish(ported_dir: str | os.PathLike[str], repo_id: str, *, private: bool = False,
            revision: str | None = None, commit_message: str | None = None, dry_run: bool = False,
            endpoint: str | None = None, token: str | None = None, license: str | None = None,
            language: str | list[str] | None = None, base_model: str | None = None,
            eval_dataset: str | None = None, timeout: float | None = None, force: bool = False) -> dict[str, Any]:
    """Upload ``ported_dir`` (with a regenerated README.md) to ``repo_id`` in one commit.

    Returns ``{"repo_id", "revision", "private", "dry_run", "files": [{path, size, sha256}], ...}``
    plus ``commit_url`` and ``commit_oid`` after a real upload. ``dry_run``
    contacts nothing and lists exactly the files that would be uploaded.
    Card options (``license``, ``language``, ``base_model``, ``eval_dataset``)
    go to :func:`modelport.modelcards.make_card`, with ``repo_id`` for its
    usage. Files that record local paths (conversion.json, export and pass
    and parity reports) are uploaded as sanitized copies (:func:`sanitize_record`);
    the local folder is never modified. Each request waits at most
    ``timeout`` seconds for the endpoint (default: MODELPORT_HUB_TIMEOUT, else
    30); a server that does not answer in time is a :class:`HubError`.
    A README.md that modelport did not write is kept, unless ``force``: the
    folder's is uploaded instead of the generated card (see :func:`plan_upload`),
    and one on the Hub that differs from the card to upload stops the upload
    before anything is committed (:class:`~modelport.errors.OutputExistsError`).
    """
    seconds = hub_timeout(timeout)
    directory = Path(ported_dir)
    problem = not_a_folder(directory)
    if problem is not None:
        raise InvalidInputError(f"`{ported_dir}` is not a ported model folder ({problem})")
    check_repo_id(repo_id)  # a dry run too, which listed the files for a repo id the upload would refuse
    files, contents = plan_upload(directory, repo_id, force, license=license, language=language,
                                  base_model=base_model, eval_dataset=eval_dataset)
    rev = revision or "main"
    result: dict[str, Any] = {"repo_id": repo_id, "revision": rev, "private": private, "dry_run": dry_run,
                              "files": files}
    if dry_run:
        return result

    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    secrets = [token, get_token()]
    message = commit_message or f"Upload {directory.resolve().name} (ported with modelport {__version__})"
    ops = [CommitOperationAdd(path_in_repo=f["path"],
                              path_or_fileobj=contents[f["path"]] if f["path"] in contents
                              else str(directory / f["path"]))
           for f in files]
    api = HfApi(endpoint=endpoint, token=token)
    # upload progress bars only on a terminal, never in logs
    quiet = not sys.stderr.isatty() and not are_progress_bars_disabled()
    if quiet:
        disable_progress_bars()
    try:
        with _request_timeout(seconds):
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if not force:
                _check_hub_card(api, repo_id, revision, contents[CARD_NAME], seconds)
            info = api.create_commit(repo_id, ops, commit_message=message, revision=revision, repo_type="model")
    except ModelportError:  # already one typed line (a card on the Hub that is kept)
        raise
    except Exception as err:  # noqa: BLE001 -- every failure becomes one typed line
        # KeyError/TypeError/AttributeError: huggingface_hub reading an answer that lacks what it expects
        known = (*_network_errors(), OSError, ValueError, KeyError, TypeError, AttributeError)
        cause: BaseException = err
        # large-file uploads wrap the HTTP error: RuntimeError("Error while uploading 'x' to the Hub.")
        while isinstance(cause, RuntimeError) and isinstance(cause.__cause__, Exception):
            cause = cause.__cause__
        if not isinstance(cause, known):
            raise
        explained = _explain(cause, repo_id, rev, secrets, seconds)
        if cause is not err:
            explained = HubError(repo_id, f"{_scrub(str(err), secrets).rstrip('.')}: {explained.reason}",
                                 explained.status)
        raise explained from None
    finally:
        if quiet:
            enable_progress_bars()
    result.update(commit_url=info.commit_url, commit_oid=info.oid, commit_message=message)
    return result
