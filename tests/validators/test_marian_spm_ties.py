"""Marian's own SentencePiece segmentation (modelport/tokenizers/marian_unigram.py) against Marian itself.

A unigram segmentation can tie: "65,000" is ``▁6 5 , 0 00`` or ``▁6 5 , 00 0``,
the same two scores added in another order. Marian's bundled SentencePiece and
the ``sentencepiece`` library break such ties differently, so a port of a
model with ``.spm`` vocabularies that segmented with the library fed its
model other ids than Marian on those lines and translated them differently
(valid.en line 260, "Their car cost 65,000 euros.": pymarian "Ihr wird um 15
Euro.", the port "Ihr wird 122222 Euro."). Here every corpus line of the
trained fixtures where the two segmentations differ is translated by the port
and by pymarian decode (whole n-best lists, scores within Marian's printed
precision), and the library's segmentation is shown to be what Marian does
not do (teacher-forced log-probs against pymarian score).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import modelport
from modelport.tokenizers.marian_unigram import MarianUnigram

pytest.importorskip("pymarian")

from modelport.generation.translate import translate  # noqa: E402
from modelport.validators.references.marian import MarianReference  # noqa: E402
from tests.validators.test_marian_pymarian import LANG_TOKENS, TRAINED, TRAINED_DIR, compare  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "assets" / "corpus"
SPM_FIXTURES = [n for n in TRAINED if (TRAINED_DIR / n / "decoder.yml").is_file()
                and str(yaml.safe_load((TRAINED_DIR / n / "decoder.yml").read_text())["vocabs"][0]).endswith(".spm")]
DEFAULT = ("post_sep_tied", "tiny11_ssru")  # separate vocabularies; a joint one (the SSRU student)
PARAMS = [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in SPM_FIXTURES]
MAX_LINES = 12


def _sp(name: str):
    import sentencepiece

    vocab = yaml.safe_load((TRAINED_DIR / name / "decoder.yml").read_text())["vocabs"][0]
    path = TRAINED_DIR / name / vocab
    sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
    return sp, MarianUnigram.load(path, sp)


def _tie_lines(name: str) -> list[str]:
    """Corpus lines whose source segmentation differs between Marian's rule and the library's."""
    sp, marian = _sp(name)
    lines = []  # both languages: a model's vocabulary may tie on the other side's words only
    for f in ("valid.en", "test.en", "train.en", "valid.de", "test.de", "train.de"):
        lines += (CORPUS / f).read_text(encoding="utf-8").splitlines()
    ties = [x for x in lines if marian.encode(x) != sp.encode(x, out_type=str)]
    assert len(ties) >= 3, f"{name}: only {len(ties)} corpus lines tie"
    tokens = LANG_TOKENS.get(name)
    return [f"{tokens[i % len(tokens)]} {x}" if tokens else x for i, x in enumerate(ties[:MAX_LINES])]


@pytest.fixture(scope="module")
def ported(tmp_path_factory):
    out = tmp_path_factory.mktemp("spm_ties")
    cache: dict[str, modelport.PortedModel] = {}

    def get(name: str) -> modelport.PortedModel:
        if name not in cache:
            cache[name] = modelport.convert(str(TRAINED_DIR / name), out / name)
        return cache[name]
    return get


def test_the_rule_on_known_lines() -> None:
    """The tie as Marian breaks it (found by the scores below), and no difference without one:
    unknown characters come out as the library gives them (a run is one piece)."""
    sp, marian = _sp("post_sep_tied")
    assert sp.encode("65,000", out_type=str) == ["▁6", "5", ",", "0", "00"]
    assert marian.encode("65,000") == ["▁6", "5", ",", "00", "0"]
    for text in ("数据 and 数据数据 x", "  a  b ", "", "ÄÖÜ ß € ½ ﬁ", "The house costs 96 euros."):
        assert marian.encode(text) == sp.encode(text, out_type=str), text


@pytest.mark.parametrize("name", PARAMS)
def test_tie_lines_translate_as_marian(name: str, ported) -> None:
    """decoder.yml's options (beam 4, normalize 0.6), n-best lists against pymarian decode."""
    p = ported(name)
    assert p.tokenizer.encode_rule == "marian"
    lines = _tie_lines(name)
    ref = MarianReference(TRAINED_DIR / name).decode(lines)
    problems = compare(p, ref, translate(p, lines, semantics="marian", n_best=True))
    assert not problems, f"{name}: {len(problems)} of {len(lines)} lines differ: " + "; ".join(problems[:3])


@pytest.mark.parametrize("name", ["post_sep_tied", "multi_target"])
def test_the_library_segmentation_is_not_marians(name: str, ported) -> None:
    """Teacher-forced log-probs of one target after each tie line: with Marian's
    segmentation the port's equal ``pymarian score``'s on every line, with the
    library's they do not (so the translation test above can fail). On
    multi_target the lines lead with a user-defined ``>>xxx<<`` piece, whose
    score moves every later sum (and so which tie wins)."""
    p = ported(name)
    model, cfg = p.models[0], p.config
    sp, marian = _sp(name)
    lines = _tie_lines(name)
    target = "Das"
    scores = MarianReference(TRAINED_DIR / name).score(lines, [target] * len(lines))
    tids = p.tokenizer.encode_target(target)
    prev = torch.tensor([[cfg.decoder_start_token_id] + tids[:-1]])

    def gap(pieces: list[str], words: tuple[float, ...]) -> float:
        src = torch.tensor([[sp.piece_to_id(x) for x in pieces] + [cfg.eos_token_id]])
        with torch.no_grad():
            lp = model.log_probs(prev, model.encode(src))[0]
        return max(abs(lp[i, t].item() - w) for i, (t, w) in enumerate(zip(tids, words)))

    library_off = 0
    for line, (_, words) in zip(lines, scores):
        assert gap(marian.encode(line), words) <= 1e-4, line
        library_off += gap(sp.encode(line, out_type=str), words) > 1e-3
    assert library_off >= len(lines) // 2, f"{name}: the library's segmentation is off on {library_off} lines only"
