"""What every exporter does first: check the output and the ported folder, and
take the lines the export is verified on."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from modelport.errors import InvalidInputError
from modelport.files import lines_of
from modelport.generation.beam import NaNLogProbs
from modelport.generation.translate import Direction
from modelport.model.folder import PortedFolder, check_writable


def open_for_export(ported_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str],
                    force: bool) -> PortedFolder:
    """The checked ported folder to export (weights not loaded), after the
    one "output exists" check, so a taken output fails before any work."""
    check_writable(output_dir, force, reads=[ported_dir])
    return PortedFolder.open(ported_dir)


@contextmanager
def nan_refused(ported_dir: str | os.PathLike[str]) -> Iterator[None]:
    """A verification whose search meets NaN log-probabilities (NaN or infinite
    weights, an overflowed precision) as one clear error; it raised NaNLogProbs
    through the command (exit 1), where ``translate`` names the folder's fault."""
    try:
        yield
    except NaNLogProbs as e:
        raise InvalidInputError(f"`{ported_dir}` cannot be verified after export: its log-probabilities are NaN at "
                                f"step {e.step} (the weights hold NaN or infinity, or a reduced precision "
                                "overflowed; check the folder with `modelport inspect`)") from None


def verification_lines(lines: str | os.PathLike[str] | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """The source lines an export is verified on: ``lines`` (strings, or a text file's lines), or
    ``default`` when None. No lines at all is an error: a verification on nothing would pass."""
    if lines is None:
        return list(default)
    checked = lines_of(lines, "--data")
    if not checked:
        raise InvalidInputError("--data holds no lines to verify the export on")
    return checked


def verification_direction(ported: Any, source_lang: str | None, target_lang: str | None,
                           verify: bool) -> Direction:
    """The direction an export's verification translates in, checked before any
    work: one the port's ``translate`` takes (a multilingual port needs both
    languages, any other port none); languages without a verification are refused."""
    direction = Direction(source_lang, target_lang)
    if verify:
        direction.tokens(ported.tokenizer, ported.generation_config, ported.config.eos_token_id)
    elif direction.given:
        raise InvalidInputError("--source-lang/--target-lang say which way the verification translates; "
                                "they do not apply with --no-verify")
    return direction


def max_abs_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over finite entries; inf when the two disagree on which are finite (or on the shape)."""
    if a.shape != b.shape or not torch.equal(torch.isfinite(a), torch.isfinite(b)):
        return math.inf
    finite = torch.isfinite(a)
    return (a - b).abs()[finite].max().item() if finite.any() else 0.0
