"""Typed exceptions.

Each error keeps its inputs as attributes and renders one line in a single
form ("`X` is not a known Y (known: ...)", "`a` must be B, but is C"). The CLI
maps every :class:`ModelportError` to exit code 2 (bad input) or 3 (parity
failed); anything else is a bug and exits 1 with a traceback.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Sequence


class ModelportError(Exception):
    """Base class of every error modelport raises on purpose."""

    exit_code: int = 2


class InvalidInputError(ModelportError, ValueError):
    """A path, option or file the user gave cannot be used."""


class OutputExistsError(ModelportError, FileExistsError):
    """The output path exists and ``force`` was not given.

    ``option`` names the way to overwrite it in the caller's terms: the API
    keyword ``force=True`` by default; the CLI renders it as ``--force``."""

    def __init__(self, path: str, option: str = "force=True", detail: str = "") -> None:
        self.path = path
        self.option = option
        self.detail = detail  # what the existing file is, when that is why it is kept
        super().__init__(path)

    def __str__(self) -> str:  # FileExistsError would render its args tuple otherwise
        detail = f" {self.detail}" if self.detail else ""
        return f"output `{self.path}` already exists{detail} (pass {self.option} to overwrite it)"


class UnknownFormatError(ModelportError, ValueError):
    """No registered converter recognises the source."""

    def __init__(self, source: str, known: Sequence[str], detail: str = "") -> None:
        self.source = source
        self.known = list(known)
        msg = f"`{source}` is not a known checkpoint format (known: {', '.join(self.known)})"
        if detail:
            msg += f"; {detail}"
        super().__init__(msg)


class UnsafeCheckpointError(ModelportError, ValueError):
    """A pickle in the checkpoint references a global that is not allowlisted."""

    def __init__(self, path: str, global_name: str, detail: str | None = None) -> None:
        self.path = path
        self.global_name = global_name
        self.detail = detail
        what = detail or f"references `{global_name}`, which is not allowed in a checkpoint"
        super().__init__(f"`{path}` {what} (refusing to load it; nothing from the file was executed)")


class CorruptCheckpointError(ModelportError, ValueError):
    """The file is truncated or not a checkpoint of the expected kind."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"`{path}` cannot be read as a checkpoint: {reason}")


class ResourceLimitError(CorruptCheckpointError):
    """A file claims more than modelport will build from it (size, nesting,
    element count): refused before the memory or time is spent."""

    def __init__(self, path: str, what: str, limit: int | str) -> None:
        self.what = what
        self.limit = limit
        super().__init__(path, f"{what} exceeds the limit of {limit}")


class UnsupportedCheckpointError(ModelportError, ValueError):
    """The checkpoint uses options modelport does not support.

    ``problems`` holds every problem found, each in the foreign framework's own
    words, so the user sees all of them at once.
    """

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__(f"`{source}` is not supported: " + "; ".join(self.problems))


class WeightMappingError(ModelportError, ValueError):
    """Unfilled slots, unmatched source keys or wrong shapes, all listed."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = list(problems)
        shown = self.problems[:8]
        more = f" (and {len(self.problems) - 8} more)" if len(self.problems) > 8 else ""
        super().__init__(f"weights of `{source}` do not map onto the model: " + "; ".join(shown) + more)


class NonFiniteWeightsError(ModelportError, ValueError):
    """Weights hold NaN or infinity (the model would decode to nothing)."""

    def __init__(self, source: str, tensors: Sequence[str]) -> None:
        self.source = source
        self.tensors = list(tensors)
        shown = ", ".join(f"`{t}`" for t in self.tensors[:5]) + (" ..." if len(self.tensors) > 5 else "")
        super().__init__(f"`{source}` has NaN or infinite values in {len(self.tensors)} tensor(s): {shown} "
                         "(pass --allow-nonfinite to convert it anyway)")


class NonFiniteOutputError(ModelportError, ValueError):
    """Decoding a line produced NaN log-probabilities (non-finite weights or overflow)."""

    def __init__(self, line: int) -> None:
        self.line = line
        super().__init__(f"line {line}: the model's log-probabilities are NaN, so its output would mean nothing "
                         "(the weights hold NaN or infinity, or a reduced precision overflowed; check the folder "
                         "with `modelport inspect`)")


class ConfigError(ModelportError, ValueError):
    """A Seq2SeqConfig was asked for a combination no real checkpoint uses."""


class HubError(ModelportError, OSError):
    """A Hub request failed (authentication, permission, missing repo or
    revision, network, rejected commit). The message never contains the token."""

    action = "publishing to `{repo_id}` failed"

    def __init__(self, repo_id: str, reason: str, status: int | None = None) -> None:
        self.repo_id = repo_id
        self.reason = reason
        self.status = status
        super().__init__(f"{self.action.format(repo_id=repo_id)}: {reason}")

    def __str__(self) -> str:  # OSError would render its args tuple otherwise
        return self.args[0] if self.args else ""


class HubDownloadError(HubError):
    """Downloading a repository from the Hub failed (not found, no access,
    offline with nothing cached, network); the message never holds the token."""

    action = "cannot load `{repo_id}` from the Hub"


class InvalidPortedFolderError(InvalidInputError):
    """A ported folder is damaged or was edited: config.json's schema, a
    safetensors header, a weight's shape or dtype, an alias or an index entry
    does not hold. ``problem`` names the first thing found."""

    def __init__(self, folder: str, problem: str) -> None:
        self.folder = folder
        self.problem = problem
        super().__init__(f"`{folder}` is not a valid ported model folder: {problem}")


class NotAPortedFolderError(InvalidPortedFolderError):
    """A folder that is something else than a ported folder (an ``export hf``
    or ``export onnx`` result, a transformers model folder): ``what`` it is
    and ``use``, what takes it instead."""

    def __init__(self, folder: str, what: str, use: str) -> None:
        self.folder = folder
        self.what = what
        self.use = use
        self.problem = what
        InvalidInputError.__init__(self, f"`{folder}` is {what}, not a ported model folder: {use}")


# OSError numbers that mean "the file system refuses the write" (read-only,
# no permission, full, over quota, file too large): the user's to fix, not a bug
WRITE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class OutputWriteError(ModelportError, OSError):
    """Writing an output failed for a reason the user can fix (read-only or
    full file system, no permission); nothing half-written is left behind."""

    def __init__(self, path: str, reason: str, code: int | None = None) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot write `{path}`: {reason}")
        self.errno = code

    def __str__(self) -> str:  # OSError would render its args tuple otherwise
        return self.args[0] if self.args else ""


class MissingReferenceError(InvalidInputError):
    """A command needs a reference framework (fairseq, transformers, pymarian)
    that is not installed here."""

    def __init__(self, module: str, purpose: str) -> None:
        self.module = module
        super().__init__(f"{purpose} needs `{module}`, which is not installed here (install the reference "
                         f"frameworks with `bash scripts/setup.sh`, or `pip install 'modelport[reference]'`)")


class ParityError(ModelportError):
    """The port does not match the reference framework."""

    exit_code = 3


def known_list(values: Iterable[str]) -> str:
    """Render a sorted, comma-separated list for error messages."""
    return ", ".join(sorted(values))


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """``Type: the first line of its message`` (at most ``limit`` characters of it), for a
    one-line error that names what a library raised."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:limit] if text else ''}".rstrip(": ")
