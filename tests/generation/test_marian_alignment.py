"""Marian's word alignments (``translate --alignment``) against ``pymarian decode --alignment``.

Models trained by Marian itself (tests/data/marian-trained, see its README.md):
``post_guided_align`` was trained with ``--guided-alignment`` (its last layer's
head 0 learned a diagonal), the others without, yet Marian prints alignments for
them too (the same head of the same layer). Each is converted and decoded by
both on the first 30 lines of assets/corpus/test.en with Marian's n-best lists,
in batches of 8 (padding between sources) and sentence by sentence. Per line
and n-best entry: the pieces are identical (a precondition), the ``hard`` and
``0.3`` alignments are the same strings, and every ``soft`` probability is
within what Marian prints (6 significant digits) plus float noise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import modelport
from modelport.cli import main
from modelport.errors import InvalidInputError
from modelport.generation.alignment import format_alignment, hard_alignment, parse_alignment
from modelport.generation.backend import SearchBackend
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, DATA

pytest.importorskip("pymarian")

from modelport.generation.translate import generate, translate  # noqa: E402
from modelport.validators.references.marian import MarianHypothesis, MarianReference, printed_tolerance  # noqa: E402
from tests.validators.test_marian_pymarian import _ensemble_dir, _trained_lines  # noqa: E402

TRAINED = DATA / "marian-trained"
N_LINES = 30
# marian-decoder's batching: several sources per batch, sorted by length, so most are padded
BATCHED = {"mini_batch": 8, "maxi_batch": 4, "maxi_batch_sort": "src"}
ONE_BY_ONE = {"mini_batch": 1, "maxi_batch": 1}
# float32 noise between the two attention computations (probabilities in [0, 1])
FLOAT_SLACK = 2e-6
MODES: tuple[str | float, ...] = ("hard", "soft", 0.3)


def _lines(n: int = N_LINES) -> list[str]:
    return (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:n]


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    """``port(directory)``: the directory converted once per module."""
    out, cache = tmp_path_factory.mktemp("marian_alignment"), {}

    def get(directory: Path) -> modelport.PortedModel:
        if directory not in cache:
            cache[directory] = modelport.convert(str(directory), out / f"{len(cache)}-{directory.name}")
        return cache[directory]
    return get


def _soft_rows(printed: str) -> list[list[float]]:
    return [[float(p) for p in row.split(",")] for row in printed.split()]


def _problems(p: modelport.PortedModel, refs: dict[Any, list[list[MarianHypothesis]]],
              ours: list[list[Any]]) -> list[str]:
    """One message per n-best entry whose alignment (any mode) differs from Marian's."""
    eos, problems = p.config.eos_token_id, []
    for mode, ref in refs.items():
        for i, (r_list, o_list) in enumerate(zip(ref, ours, strict=True)):
            assert len(r_list) == len(o_list), f"line {i}: n-best sizes differ"
            for j, (r, o) in enumerate(zip(r_list, o_list)):
                pieces = tuple(p.tokenizer.id_to_tokens([t for t in o.tokens if t != eos], side="target"))
                assert pieces == r.pieces, f"line {i} hypothesis {j}: the translations differ (not an alignment issue)"
                assert o.alignment is not None and len(o.alignment) == len(o.tokens)
                if mode != "soft":
                    if format_alignment(o.alignment, mode) != r.alignment:
                        problems.append(f"{mode} line {i} hyp {j}: marian {r.alignment!r}, "
                                        f"modelport {format_alignment(o.alignment, mode)!r}")
                    continue
                theirs = _soft_rows(r.alignment or "")
                if [len(row) for row in theirs] != [len(row) for row in o.alignment]:
                    problems.append(f"soft line {i} hyp {j}: shapes differ")
                    continue
                off = max(abs(a - b) - printed_tolerance(b) for ra, rb in zip(o.alignment, theirs)
                          for a, b in zip(ra, rb))
                if off > FLOAT_SLACK:
                    problems.append(f"soft line {i} hyp {j}: a probability is {off:.1e} beyond Marian's precision")
    return problems


def _check(p: modelport.PortedModel, directory: Path, beam: int, batching: dict[str, Any],
           lines: list[str] | None = None, modes: tuple[str | float, ...] = MODES) -> None:
    lines = lines or _lines()
    ref = MarianReference(directory)
    refs = {mode: ref.decode(lines, beam_size=beam, alignment=mode, **batching) for mode in modes}
    ours = translate(p, lines, semantics="marian", beam_size=beam, n_best=True, alignment="soft", **batching)
    problems = _problems(p, refs, ours)
    assert not problems, f"{len(problems)} alignments differ: " + "; ".join(problems[:3])


@pytest.mark.parametrize("beam,batching", [(1, ONE_BY_ONE), (4, BATCHED)], ids=["beam1", "beam4-batched"])
def test_guided_alignment_model_equals_pymarian(beam: int, batching: dict[str, Any], port) -> None:
    directory = TRAINED / "post_guided_align"
    _check(port(directory), directory, beam, batching)


def test_alignment_layer_is_the_models(tmp_path: Path, port) -> None:
    """A model whose model.yml says ``transformer-guided-alignment-layer: 1``:
    Marian reads that layer (a decoding flag does not override it), and so does
    the converted folder."""
    src = TRAINED / "post_guided_align"
    shutil.copytree(src, tmp_path / "layer1", ignore=shutil.ignore_patterns("model.npz"))
    arrays = dict(np.load(src / "model.npz"))
    yml = bytes(arrays["special:model.yml"]).decode("utf-8")
    assert "transformer-guided-alignment-layer: last" in yml
    yml = yml.replace("transformer-guided-alignment-layer: last", "transformer-guided-alignment-layer: 1")
    arrays["special:model.yml"] = np.frombuffer(yml.encode("utf-8"), dtype=np.int8)
    np.savez(tmp_path / "layer1" / "model.npz", **arrays)
    p = port(tmp_path / "layer1")
    assert p.generation_config["alignment_layer"] == "1"
    _check(p, tmp_path / "layer1", 4, BATCHED, lines=_lines(12), modes=("hard", "soft"))
    # the last layer's attention (what an old folder without the key reads) is another alignment
    last = translate(p, _lines(12), semantics="marian", alignment="hard", alignment_layer="last")
    first = translate(p, _lines(12), semantics="marian", alignment="hard")
    assert [h[0].tokens for h in last] == [h[0].tokens for h in first]
    assert [h[0].alignment for h in last] != [h[0].alignment for h in first]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["post_sep_tied", "pre_ffn3_swish", "tiny11_ssru", "big_heads16", "multi_target",
                                  "opus_yaml_multi"])
@pytest.mark.parametrize("beam,batching", [(1, BATCHED), (4, ONE_BY_ONE), (6, BATCHED)])
def test_models_trained_without_guided_alignment(name: str, beam: int, batching: dict[str, Any], port) -> None:
    """Marian prints the same head of the last layer for any transformer
    (the SSRU decoder of tiny11 included); the multilingual models' lines lead
    with their ``>>xxx<<`` token, a source position like any other."""
    _check(port(TRAINED / name), TRAINED / name, beam, batching, lines=_trained_lines(name))


@pytest.mark.slow
def test_ensemble_takes_the_first_members_alignment(tmp_path: Path, port) -> None:
    """A weighted ensemble: Marian's alignments are its first scorer's."""
    directory = _ensemble_dir(tmp_path / "ens")
    _check(port(directory), directory, 4, BATCHED)


@pytest.mark.slow
def test_alignment_changes_nothing_else(port) -> None:
    """Recording the attention leaves tokens and scores exactly as without it."""
    p, lines = port(TRAINED / "post_guided_align"), _lines()
    plain = translate(p, lines, semantics="marian", beam_size=4, n_best=True, **BATCHED)
    aligned = translate(p, lines, semantics="marian", beam_size=4, n_best=True, alignment="hard", **BATCHED)
    assert [[(h.tokens, h.score, h.positional_scores) for h in n] for n in plain] == \
        [[(h.tokens, h.score, h.positional_scores) for h in n] for n in aligned]
    assert all(h.alignment is None for n in plain for h in n)


# ---------------------------------------------------------------------------
# the conversion rules and the command line


def test_hard_and_threshold_rules() -> None:
    """``ConvertSoftAlignToHardAlign``: argmax per target (first of equals),
    or every probability above the threshold; pairs sorted by source."""
    soft = [[0.25, 0.5, 0.25], [0.4, 0.2, 0.4], [0.1, 0.1, 0.8]]
    assert hard_alignment(soft) == [(0, 1), (1, 0), (2, 2)]
    assert format_alignment(soft, "hard") == "0-1 1-0 2-2"
    assert format_alignment(soft, 0.3) == "0-1 1-0 2-1 2-2"
    assert format_alignment(soft, 1.0) == format_alignment(soft, "hard")
    assert format_alignment(soft, 0.9) == ""
    assert format_alignment([[0.979199, 1.4996e-05, 1.0]], "soft") == "0.979199,1.4996e-05,1"
    for bad in ("0", "-1", "nan", "argmax", ""):
        with pytest.raises(InvalidInputError, match="hard, soft or a threshold"):
            parse_alignment(bad)


@pytest.fixture(scope="module")
def guided(port) -> modelport.PortedModel:
    return port(TRAINED / "post_guided_align")


def test_cli_prints_marians_lines(guided, tmp_path: Path, capsys) -> None:
    """``translate --alignment``: ``text ||| alignment`` per hypothesis, as
    marian-decoder prints its best translation; --json carries the pairs."""
    src = tmp_path / "in.txt"
    src.write_text("\n".join(_lines(3)) + "\n", encoding="utf-8")
    ref = MarianReference(TRAINED / "post_guided_align").decode(_lines(3), beam_size=4, alignment="hard")
    assert main(["translate", str(guided.path), "-i", str(src), "--alignment", "hard", "--quiet"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{r[0].text} ||| {r[0].alignment}" for r in ref]
    assert main(["translate", str(guided.path), "-i", str(src), "--alignment", "hard", "--json", "--quiet"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    pairs = [" ".join(f"{s}-{t}" for s, t in o["hypotheses"][0]["alignment"]) for o in objects]
    assert pairs == [r[0].alignment for r in ref]


def test_cli_refuses_alignment_without_marian_semantics(guided, ported_default, tmp_path: Path, capsys) -> None:
    src = tmp_path / "in.txt"
    src.write_text("Hello world\n", encoding="utf-8")
    line = one_line_error(["translate", str(guided.path), "-i", str(src), "--alignment", "hard",
                           "--semantics", "fairseq"], capsys)
    assert "`--alignment` needs marian semantics" in line
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src), "--alignment", "soft"], capsys)
    assert "`--alignment` needs marian semantics" in line and "fairseq" in line
    with pytest.raises(SystemExit) as info:  # argparse's type check, one line
        main(["translate", str(guided.path), "-i", str(src), "--alignment", "0"])
    assert info.value.code == 2
    assert "`--alignment` must be hard, soft or a threshold number > 0" in capsys.readouterr().err


def test_api_refuses_a_layer_the_decoder_lacks(guided) -> None:
    with pytest.raises(InvalidInputError, match="alignment_layer.*from 1 to 2"):
        translate(guided, ["Hello"], semantics="marian", alignment="hard", alignment_layer="3")


class _Runtime(SearchBackend):
    """Another runtime behind the loop (as the ONNX one): it has no attention to give."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    def encode(self, src_tokens: torch.Tensor) -> None:
        raise AssertionError("alignments must be refused before any work")

    reorder_encoder = reorder = logits = encode  # type: ignore[assignment]


def test_other_runtimes_are_refused(guided) -> None:
    with pytest.raises(InvalidInputError, match="torch backend"):
        generate(_Runtime(guided.config), [[5, guided.config.eos_token_id]], semantics="marian", alignment="hard")
