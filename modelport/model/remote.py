"""A ported folder named by a Hugging Face Hub repo id (``org/name``), as
transformers' ``from_pretrained`` takes one: downloaded with
``huggingface_hub.snapshot_download``, so its cache (``HF_HOME`` /
``HF_HUB_CACHE``), offline mode (``HF_HUB_OFFLINE``), endpoint
(``HF_ENDPOINT``) and token (``HF_TOKEN``, ``hf auth login``) work as
huggingface_hub makes them work. The snapshot is then checked like any
ported folder (:meth:`modelport.model.folder.PortedFolder.open`): a download
is untrusted input.

The rule that tells a path from a repo id (:func:`resolve_ported`): a string
naming something that exists on disk is always a path; otherwise a
``NAMESPACE/NAME``-shaped string is a repo id; anything else does not exist.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelport.errors import HubDownloadError, InvalidInputError

def is_repo_id(text: str) -> bool:
    """``text`` is a Hub model repo id with its namespace, ``NAMESPACE/NAME``, by
    huggingface_hub's own rule (``validate_repo_id``)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id  # lazy: `modelport --help` stays light

    if text.count("/") != 1:
        return False
    try:
        validate_repo_id(text)
    except HFValidationError:
        return False
    return True


def resolve_ported(location: str | os.PathLike[str], revision: str | None = None, *,
                   progress: bool = True, other_sources: bool = False) -> Path:
    """The local folder ``location`` names: itself when it exists on disk
    (or is a ``Path``), else the snapshot of Hub repo ``location`` at
    ``revision`` (default: main), downloaded into huggingface_hub's cache.
    ``progress``: huggingface_hub's download bars. ``other_sources``: a
    string that is neither is returned as it is (a foreign checkpoint
    spelling such as ``a.pt:b.pt``, for the converters to read or refuse)."""
    if isinstance(location, os.PathLike) or os.path.lexists(location):
        if revision is not None:
            raise InvalidInputError(f"`revision` applies to a Hub repo id, but `{location}` is a local path")
        return Path(location)
    if not is_repo_id(location):
        if other_sources and revision is None:
            return Path(location)
        raise InvalidInputError(f"`{location}` does not exist (and is not a Hub repo id NAMESPACE/NAME)")
    return download(location, revision, progress=progress)


def download(repo_id: str, revision: str | None = None, *, progress: bool = True) -> Path:
    """``snapshot_download(repo_id, revision=revision)``: the snapshot folder
    in huggingface_hub's cache (only what changed is fetched again); a
    failure is one :class:`HubDownloadError` line."""
    from huggingface_hub import snapshot_download  # lazy: only a Hub load needs it
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    bars_were_off = are_progress_bars_disabled()
    if not progress:
        disable_progress_bars()
    try:
        return Path(snapshot_download(repo_id, revision=revision, library_name="modelport"))
    except Exception as e:  # noqa: BLE001 -- every huggingface_hub / network failure becomes one line
        raise _explain(e, repo_id, revision) from None
    finally:
        if not progress and not bars_were_off:
            enable_progress_bars()


def _explain(err: Exception, repo_id: str, revision: str | None) -> HubDownloadError:
    """One line for a failed download, in the terms a user can act on."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError,
                                        RepositoryNotFoundError, RevisionNotFoundError)

    rev = revision or "main"
    if isinstance(err, HFValidationError):
        return HubDownloadError(repo_id, f"`{repo_id}` is not a valid repo id (expected NAMESPACE/NAME)")
    if isinstance(err, RevisionNotFoundError):
        return HubDownloadError(repo_id, f"revision `{rev}` does not exist (check --revision)", 404)
    if isinstance(err, GatedRepoError):
        return HubDownloadError(repo_id, "the repository is gated: accept its conditions on the Hub, then set "
                                         "HF_TOKEN or run `hf auth login`", 403)
    if isinstance(err, RepositoryNotFoundError):
        return HubDownloadError(repo_id, f"it is neither a local folder nor a repository on {constants.ENDPOINT} "
                                         "(not found, or private: set HF_TOKEN or run `hf auth login`)", 404)
    if isinstance(err, LocalEntryNotFoundError):
        if constants.is_offline_mode():
            return HubDownloadError(repo_id, "HF_HUB_OFFLINE is set and the Hugging Face cache "
                                             f"({constants.HF_HUB_CACHE}) holds no copy of revision `{rev}`")
        return HubDownloadError(repo_id, f"it is not a local folder, {constants.ENDPOINT} cannot be reached and "
                                         f"the Hugging Face cache holds no copy of revision `{rev}`")
    if isinstance(err, HfHubHTTPError):
        status = err.response.status_code if err.response is not None else None
        return HubDownloadError(repo_id, f"the Hub answered {status} ({type(err).__name__})", status)
    text = str(err).splitlines()[0][:200] if str(err) else ""
    return HubDownloadError(repo_id, f"{type(err).__name__}: {text}" if text else type(err).__name__)


__all__ = ["HubDownloadError", "download", "is_repo_id", "resolve_ported"]
