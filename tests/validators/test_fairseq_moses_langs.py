"""The Moses languages of a fairseq port are fairseq's own (issue #18, item 1).

fairseq's hub interface (``TransformerModel.from_pretrained(dir,
tokenizer='moses', ...)``) does not always tokenize and detokenize with the
task's languages: a ``cfg`` checkpoint that records no tokenizer gets
``MosesTokenizerConfig``'s ``en`` on both sides, an ``args`` checkpoint the
task's languages, and the languages passed to ``from_pretrained`` override
either. Each case here builds a tiny checkpoint with fairseq's own builders,
asks fairseq's hub which languages it ends up with, and checks that the port
records (and its tokenizer and the validator's reference use) the same ones.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch

import modelport

pytest.importorskip("fairseq")

from tests.helpers.fairseq_ref import build_fairseq_model  # noqa: E402

from modelport.validators.references.fairseq_hub import FairseqHubReference  # noqa: E402

_LEGACY = {"_use_new_zipfile_serialization": False}


def _variant(ckpt: dict[str, Any], layout: str, kind: str) -> dict[str, Any]:
    """``ckpt`` edited the way checkpoints in the wild differ."""
    out = copy.deepcopy(ckpt)
    if kind == "tokenizer-recorded":
        if layout == "cfg":
            out["cfg"]["tokenizer"] = {"_name": "moses", "source_lang": "xx", "target_lang": "pg",
                                       "moses_no_dash_splits": False, "moses_no_escape": False}
        else:  # fairseq <= 0.9 options: 0.12 reads the task's languages instead
            out["args"].tokenizer, out["args"].moses_source_lang, out["args"].moses_target_lang = "moses", "xx", "pg"
    elif kind == "no-task-langs":
        task = out["cfg"]["task"] if layout == "cfg" else out["args"]
        if layout == "cfg":
            task["source_lang"] = task["target_lang"] = None
        else:
            task.source_lang = task.target_lang = None
    return out


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """layout -> folder with one .pt per variant (en->pg, dict.en.txt / dict.pg.txt)."""
    out = {}
    for layout, builder in (("cfg", "cfg-dict"), ("args", "args-legacy")):
        d = tmp_path_factory.mktemp(f"langs-{layout}")
        build_fairseq_model(d, layout=builder, src_vocab=20, tgt_vocab=24, target_lang="pg")
        (d / "dict.de.txt").rename(d / "dict.pg.txt")
        ckpt = torch.load(d / "model.pt", map_location="cpu", weights_only=False)
        for kind in ("tokenizer-recorded", "no-task-langs"):
            torch.save(_variant(ckpt, layout, kind), d / f"{kind}.pt", **(_LEGACY if layout == "args" else {}))
        out[layout] = d
    return out


# (layout, checkpoint variant, languages given to convert = passed to from_pretrained)
CASES = [
    ("cfg", "model", {}),
    ("cfg", "model", {"source_lang": "en", "target_lang": "pg"}),
    ("cfg", "model", {"target_lang": "pg"}),
    ("cfg", "tokenizer-recorded", {}),
    ("cfg", "tokenizer-recorded", {"source_lang": "en"}),
    ("cfg", "no-task-langs", {}),
    ("args", "model", {}),
    ("args", "model", {"source_lang": "en", "target_lang": "pg"}),
    ("args", "tokenizer-recorded", {}),
    ("args", "no-task-langs", {}),
]


def _hub_langs(folder: Path, checkpoint: str, langs: dict[str, str]) -> tuple[str, str]:
    """What fairseq's hub builds its Moses tokenizer with (the reference)."""
    from fairseq.models.transformer import TransformerModel

    hub = TransformerModel.from_pretrained(str(folder), checkpoint_file=checkpoint, tokenizer="moses", **langs)
    return hub.tokenizer.cfg.source_lang, hub.tokenizer.cfg.target_lang


@pytest.mark.parametrize("layout,variant,given", CASES, ids=[f"{a}-{b}-{'+'.join(c) or 'none'}" for a, b, c in CASES])
def test_port_records_fairseqs_moses_languages(checkpoints, tmp_path, layout, variant, given) -> None:
    folder = checkpoints[layout]
    ported = modelport.convert(str(folder / f"{variant}.pt"), tmp_path / "ported", **given)
    tok = json.loads((ported.tokenizer_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    # a fairseq user passes the languages given to convert, and both when the checkpoint names none
    passed = tok["from_pretrained_langs"]
    assert {k: v for k, v in passed.items() if k in given} == given
    if variant == "no-task-langs":
        assert passed == {"source_lang": "en", "target_lang": "pg"}
    expected = _hub_langs(folder, f"{variant}.pt", passed)
    assert (tok["moses_source_lang"], tok["moses_target_lang"]) == expected
    assert (tok["source_lang"], tok["target_lang"]) == ("en", "pg")
    assert (ported.tokenizer.moses_source_lang, ported.tokenizer.moses_target_lang) == expected
    assert ported.tokenizer._sides["source"].moses.lang == expected[0]
    assert ported.tokenizer._detok["target"].lang == expected[1]
    # the validator's reference is fairseq's own hub tokenizer, built from what the port records
    single = tmp_path / "ref"
    single.mkdir()
    for name in ("dict.en.txt", "dict.pg.txt"):
        (single / name).write_bytes((folder / name).read_bytes())
    (single / "model.pt").write_bytes((folder / f"{variant}.pt").read_bytes())
    ref = FairseqHubReference(single, source_lang="en", target_lang="pg", from_pretrained_langs=passed)
    assert ref.moses_langs == expected


def test_the_cases_differ(checkpoints) -> None:
    """The cases above are not all one answer: fairseq itself gives en/en, en/pg and xx/pg."""
    got = {_hub_langs(checkpoints["cfg"], "model.pt", {}), _hub_langs(checkpoints["args"], "model.pt", {}),
           _hub_langs(checkpoints["cfg"], "tokenizer-recorded.pt", {})}
    assert got == {("en", "en"), ("en", "pg"), ("xx", "pg")}


def test_from_pretrained_langs_only_take_language_codes(checkpoints) -> None:
    """The mapping comes from a ported folder: nothing but two language codes reaches from_pretrained."""
    from modelport.errors import InvalidInputError

    for bad in ({"user_dir": "/tmp"}, {"source_lang": "../x"}, {"source_lang": 3}, ["en"]):
        with pytest.raises(InvalidInputError):
            FairseqHubReference(checkpoints["cfg"], source_lang="en", target_lang="pg", from_pretrained_langs=bad)
