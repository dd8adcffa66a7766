"""Marian's lexical shortlist (``translate --shortlist``) against ``pymarian decode --shortlist``.

The shortlists are tests/data/marian-shortlist/<model>.lex.s2t (IBM model 1
over the models' pieces, scripts/make_marian_shortlist.py; see the README.md
there), for ``post_sep_tied`` (separate vocabularies) and ``tiny11_ssru``
(the Bergamot student shape, one joint vocabulary: the batch's source ids
enter the list too); the slow matrix runs every trained fixture with
SentencePiece vocabularies (``SHORTLIST_OF``). Per line the n-best lists must be identical piece for
piece and the scores within what Marian prints (the tolerances of
tests/validators/test_marian_pymarian.py). Each case also checks that the
port decoding *without* the shortlist differs from Marian's output with it,
so that a shortlist ignored would fail. The rule itself (pruning, the
batch's list, the padding to a multiple of 8) is checked on small
hand-written files whose expected lists follow from Marian's code
(marian-dev src/data/shortlist.h).
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import pytest
import torch

import modelport
from modelport.errors import InvalidInputError
from modelport.generation.shortlist import BINARY_MAGIC, LexicalShortlist, ShortlistSpec
from tests.helpers.cli import one_line_error

ROOT = Path(__file__).resolve().parents[2]
TRAINED = ROOT / "tests" / "data" / "marian-trained"
SHORTLISTS = ROOT / "tests" / "data" / "marian-shortlist"
MODELS = ("post_sep_tied", "tiny11_ssru")
# The slow matrix runs every trained fixture with SentencePiece vocabularies (opus_yaml_multi has OPUS-MT's
# YAML vocabulary, which make_marian_shortlist.py does not read). Fixtures whose .spm files hold the same
# pieces (trained alike on the same lines) share one file: these wrote byte-identical shortlists.
SHORTLIST_OF = {"post_sep_tied": "post_sep_tied", "post_guided_align": "post_sep_tied",
                "post_untied_relu": "post_sep_tied", "tiny11_ssru": "tiny11_ssru", "pre_ffn3_swish": "tiny11_ssru",
                "post_tiedsrc_relu": "tiny11_ssru", "big_heads16": "tiny11_ssru", "multi_target": "multi_target"}
N_LINES = 30
BATCHING = {"mini_batch": 8, "maxi_batch": 4, "maxi_batch_sort": "src"}
# (beam, shortlist values after the file, batching): the first keeps only the 3 best
# translations above 0.1 and no frequent words (Marian's padding to 8 adds ids 0, 1, ...)
CASES = [(1, (0, 3, 0.1), BATCHING), (4, (50, 10), {})]
SLOW_CASES = [(b, v, BATCHING) for b in (1, 4, 6) for v in ((0, 3, 0.1), (20, 5), (50, 10, 0.05), ())]


def _lines(n: int = N_LINES) -> list[str]:
    return (ROOT / "assets" / "corpus" / "test.en").read_text(encoding="utf-8").splitlines()[:n]


def _spec(name: str, values: tuple[Any, ...]) -> list[Any]:
    return [str(SHORTLISTS / f"{SHORTLIST_OF[name]}.lex.s2t"), *values]


# ---------------------------------------------------------------------------
# the rule, on hand-written files

# Marian ids: </s> 0, <unk> 1, then pieces; the target vocabulary has 40 ids
SOURCE = {"</s>": 0, "<unk>": 1, "a": 2, "b": 3, "c": 4, "d": 25}
TARGET = {"</s>": 0, "<unk>": 1, **{f"t{i}": i for i in range(2, 40)}}


def _load_path(path: Path, *values: Any, shared: bool = False, target_size: int = 40) -> LexicalShortlist:
    return LexicalShortlist.load([str(path), *values], source_vocab=SOURCE, target_vocab=TARGET, source_unk=1,
                                 target_unk=1, target_size=target_size, shared=shared)


def _load(tmp_path: Path, text: str, *values: Any, name: str = "lex.s2t", **kwargs: Any) -> LexicalShortlist:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return _load_path(path, *values, **kwargs)


def _rows(shortlist: LexicalShortlist, *src: int, unk: int | None = None) -> list[int]:
    return shortlist.indices(torch.tensor([list(src)]), pad=99, suppressed_unk=unk).tolist()


LEX = """t10 a 0.5
t13 a 0.5
t15 a 0.2
t10 a 0.1
NULL a 0.9
t20 NULL 0.9
nosuch b 0.3
t30 zz 0.7
t21 c 0.15
"""


def test_pruning_and_the_batch_list(tmp_path: Path) -> None:
    """first 2, best 2, threshold 0.15: the later `t10 a 0.1` replaces
    `t10 a 0.5`, so `a` keeps t13 (0.5) and t15 (0.2); NULL entries are
    skipped; `b`'s unknown target is <unk>; the unknown source `zz` counts as
    <unk>; `c`'s 0.15 is not above 0.15. The list: ids 0 and 1 (first 2),
    the batch's targets, then ids 2, 3, ... until it holds a multiple of 8."""
    sl = _load(tmp_path, LEX, 2, 2, 0.15)
    assert _rows(sl, 2, 0) == [0, 1, 2, 3, 4, 5, 13, 15]
    assert _rows(sl, 3, 0) == list(range(8))  # <unk> (1) is already there
    assert _rows(sl, 1, 0) == [0, 1, 2, 3, 4, 5, 6, 30]
    assert _rows(sl, 4, 0) == list(range(8))
    # ties rank the larger target id first: best 1 keeps t13 of t10/t13 at 0.5 (before the replacement)
    tie = _load(tmp_path, "t10 a 0.5\nt13 a 0.5\n", 0, 1)
    assert _rows(tie, 2) == [0, 1, 2, 3, 4, 5, 6, 13]
    # a batch: the union over its source ids (the pad id left out); no padding when already 8
    eight = _load(tmp_path, "".join(f"t{i} a 0.9\n" for i in range(10, 16)) + "t20 b 0.9\nt21 b 0.9\n", 0)
    assert _rows(eight, 2, 3) == [10, 11, 12, 13, 14, 15, 20, 21]


def test_shared_vocabulary_adds_the_source_ids(tmp_path: Path) -> None:
    """One vocabulary file for both sides (Marian compares the two paths):
    the source ids themselves are listed, here `d` (25)."""
    assert _rows(_load(tmp_path, LEX, 0, shared=True), 25, 2) == [0, 1, 2, 3, 10, 13, 15, 25]
    assert _rows(_load(tmp_path, LEX, 0), 25, 2) == [0, 1, 2, 3, 4, 10, 13, 15]
    assert _rows(_load(tmp_path, "t30 a 0.9\n", 8, shared=True), 2, 0) == list(range(15)) + [30]


def test_gzip_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "lex.s2t.gz"
    path.write_bytes(gzip.compress(LEX.encode()))
    assert _rows(_load_path(path, 2, 2, 0.15), 2, 0) == [0, 1, 2, 3, 4, 5, 13, 15]


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_gzip_file_is_refused(tmp_path: Path, damage: str) -> None:
    """A truncated gzip raised EOFError, a damaged one zlib.error: exit 1 from `translate` and `convert`."""
    packed = gzip.compress((LEX * 200).encode())
    path = tmp_path / "lex.s2t.gz"
    path.write_bytes(packed[: len(packed) // 2] if damage == "truncated"
                     else packed[:20] + bytes(b ^ 0x5A for b in packed[20:-8]) + packed[-8:])
    with pytest.raises(InvalidInputError, match="lex.s2t.gz: the gzipped shortlist cannot be read"):
        _load_path(path, 2, 2, 0.15)


def test_gzip_bomb_is_refused_in_bounded_time(tmp_path: Path) -> None:
    """Repeated lines gzip 1000x: a 100 KB file inflated to 546 MB in memory after 30 s before."""
    import time

    from modelport.tokenizers.marian_shortlist import MAX_INFLATION, MIN_INFLATED_BYTES

    line = b"t1 a 0.5\n"
    path = tmp_path / "lex.s2t.gz"
    path.write_bytes(gzip.compress(line * ((MIN_INFLATED_BYTES // len(line)) * 4), compresslevel=9))
    assert MAX_INFLATION * path.stat().st_size < MIN_INFLATED_BYTES  # the floor, not the ratio, is the limit
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match="lex.s2t.gz: the gzipped shortlist inflates past 16777216 bytes"):
        _load_path(path, 2, 2, 0.15)
    assert time.perf_counter() - start < 30


def test_a_directory_as_shortlist_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="must be a file, but is a directory"):
        _load_path(tmp_path, 2, 2, 0.15)


def test_where_marian_is_undefined_is_an_error(tmp_path: Path) -> None:
    # padding to 8 would run past the vocabulary (Marian reads past its end)
    with pytest.raises(InvalidInputError, match="target vocabulary ends at 10"):
        _rows(_load(tmp_path, LEX, 10, target_size=10), 0)
    # <unk> at another position than its id while suppressed: Marian suppresses the wrong word
    odd = _load(tmp_path, "".join(f"t{i} c 0.9\n" for i in range(10, 17)) + "<unk> c 0.9\n", 0)
    assert _rows(odd, 4) == [1, *range(10, 17)]
    with pytest.raises(InvalidInputError, match="<unk> \\(id 1\\) at another position"):
        _rows(odd, 4, unk=1)
    # nothing listed (first 0, no entries for the batch's words): Marian has no row to score
    with pytest.raises(InvalidInputError, match="empty"):
        _rows(_load(tmp_path, LEX, 0), 25)


@pytest.mark.parametrize(("text", "line"), [("t10 a 0.5\nt10 a\n", 2), ("t10 a 0.5\n\nt10 a x\n", 3),
                                            ("t10 a nan\n", 1), ("t10 a 0.5 0.1\n", 1)])
def test_bad_line_is_named(tmp_path: Path, text: str, line: int) -> None:
    with pytest.raises(InvalidInputError, match=f"lex.s2t:{line}: a shortlist line must be `TARGET SOURCE PROB`"):
        _load(tmp_path, text)


def test_bad_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="missing` does not exist"):
        _load_path(tmp_path / "missing")
    (tmp_path / "bin.s2t").write_bytes(BINARY_MAGIC + b"\0" * 40)
    with pytest.raises(InvalidInputError, match="binary shortlist"):
        _load_path(tmp_path / "bin.s2t")
    with pytest.raises(InvalidInputError, match="binary shortlist"):
        _load(tmp_path, LEX, name="lex.bin")
    (tmp_path / "latin1.s2t").write_bytes(b"t10 a 0.5\nt\xe9 a 0.5\n")
    with pytest.raises(InvalidInputError, match="latin1.s2t:2: a shortlist must be UTF-8"):
        _load_path(tmp_path / "latin1.s2t")
    with pytest.raises(InvalidInputError, match="at most"):
        _load(tmp_path, "t10 a 0.5 " + "x" * 70000 + "\n")


@pytest.mark.parametrize("values", [[], ["f", 1, 2, 3, 4], ["f", "x"], ["f", -1], ["f", 1, 2.5], ["f", 1, 1, "inf"]])
def test_bad_values_are_refused(values: list[Any]) -> None:
    with pytest.raises(InvalidInputError, match="shortlist"):
        ShortlistSpec.parse(values)


def test_spec_defaults_are_marians() -> None:
    assert ShortlistSpec.parse("lex.s2t") == ShortlistSpec(Path("lex.s2t"), 100, 100, 0.0)
    assert ShortlistSpec.parse(["lex.s2t", "50", "10", "0.1"]).threshold == pytest.approx(0.1)


# ---------------------------------------------------------------------------
# against pymarian


@pytest.fixture(scope="module")
def ported(tmp_path_factory) -> dict[str, modelport.PortedModel]:
    out = tmp_path_factory.mktemp("marian_shortlist")

    class Ported(dict):  # each model converted when a test first asks for it
        def __missing__(self, name: str) -> modelport.PortedModel:
            self[name] = modelport.convert(str(TRAINED / name), out / name)
            return self[name]

    return Ported()


def _check(p: modelport.PortedModel, name: str, beam: int, values: tuple[Any, ...], batching: dict[str, Any],
           directory: Path | None = None, must_change: bool = True) -> None:
    pytest.importorskip("pymarian")
    from modelport.generation.translate import translate
    from modelport.validators.references.marian import MarianReference
    from tests.validators.test_marian_pymarian import _trained_lines, compare

    lines = _trained_lines(name, N_LINES)  # multi_target's lines lead with >>deu<< / >>pgl<<
    ref = MarianReference(directory or TRAINED / name).decode(lines, beam_size=beam, shortlist=_spec(name, values),
                                                               **batching)
    ours = translate(p, lines, semantics="marian", beam_size=beam, n_best=True, shortlist=_spec(name, values),
                     **batching)
    problems = compare(p, ref, ours)
    assert not problems, f"{name}: {len(problems)} differences: " + "; ".join(problems[:3])
    if must_change:  # the shortlist matters here: decoding without it does not give Marian's output
        whole = translate(p, lines, semantics="marian", beam_size=beam, n_best=True, **batching)
        assert compare(p, ref, whole), f"{name}: the shortlist {values} changes nothing; the case cannot fail"


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"beam{c[0]}-{'-'.join(map(str, c[1]))}")
@pytest.mark.parametrize("name", MODELS)
def test_nbest_equals_pymarian(name: str, case: tuple[int, tuple[Any, ...], dict[str, Any]], ported) -> None:
    _check(ported[name], name, *case)


@pytest.mark.slow
@pytest.mark.parametrize("case", SLOW_CASES, ids=lambda c: f"beam{c[0]}-{'-'.join(map(str, c[1])) or 'defaults'}")
@pytest.mark.parametrize("name", sorted(SHORTLIST_OF))
def test_nbest_matrix(name: str, case: tuple[int, tuple[Any, ...], dict[str, Any]], ported) -> None:
    _check(ported[name], name, *case, must_change=False)


@pytest.mark.slow
@pytest.mark.parametrize("beam", [1, 4])
def test_weighted_ensemble(beam: int, tmp_path_factory) -> None:
    """post_sep_tied + post_guided_align with weights 0.7/0.3: every member
    scores the same list (Marian: one generator, the first scorer's list)."""
    pytest.importorskip("pymarian")
    from tests.validators.test_marian_pymarian import _ensemble_dir

    directory = _ensemble_dir(tmp_path_factory.mktemp("ens") / "ens")
    p = modelport.convert(str(directory), tmp_path_factory.mktemp("ens_port") / "p")
    _check(p, "post_sep_tied", beam, (20, 5), BATCHING, directory=directory)


def test_output_rows_are_the_logits_of_those_rows(ported, tmp_path: Path) -> None:
    """The restricted projection (tied, and an own output matrix) gives the
    full projection's columns of the listed ids, bias included."""
    untied = modelport.convert(str(TRAINED / "post_untied_relu"), tmp_path / "untied")
    for model in (ported["post_sep_tied"].model, untied.model):
        hidden = torch.randn(3, model.cfg.d_model, generator=torch.Generator().manual_seed(0))
        rows = torch.tensor([0, 2, 5, 7, 100, 399])
        torch.testing.assert_close(model.output_rows(rows)(hidden), model.logits(hidden)[:, rows])


def test_generate_needs_a_loaded_shortlist(ported) -> None:
    """The token-level API has no vocabularies to read a file with."""
    from modelport.generation.translate import generate

    with pytest.raises(InvalidInputError, match="LexicalShortlist"):
        generate(ported["post_sep_tied"].models, [[5, 6, 0]], semantics="marian", shortlist=_spec("post_sep_tied", ()))


# ---------------------------------------------------------------------------
# the command line


def test_cli_translate_with_shortlist(ported, tmp_path: Path, capsys) -> None:
    pytest.importorskip("pymarian")
    from modelport.cli import main
    from modelport.validators.references.marian import MarianReference

    name, lines = "post_sep_tied", _lines(8)
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    folder = str(ported[name].path)
    assert main(["translate", folder, "-i", str(src), "-o", str(out), "--beam", "4",
                 "--shortlist", *map(str, _spec(name, (0, 3, 0.1)))]) == 0
    ref = MarianReference(TRAINED / name).decode(lines, beam_size=4, shortlist=_spec(name, (0, 3, 0.1)))
    assert [t.strip() for t in out.read_text(encoding="utf-8").splitlines()] == [r[0].text.strip() for r in ref]
    line = one_line_error(["translate", folder, "-i", str(src), "--semantics", "fairseq",
                           "--shortlist", *map(str, _spec(name, ()))], capsys)
    assert "shortlist" in line and "fairseq" in line
    line = one_line_error(["translate", folder, "-i", str(src), "--shortlist", str(tmp_path / "none.s2t")], capsys)
    assert "none.s2t` does not exist" in line
    line = one_line_error(["translate", folder, "-i", str(src), "--shortlist", "f", "1", "2", "3", "4"], capsys)
    assert "FILE [FIRST [BEST [THRESHOLD]]]" in line
