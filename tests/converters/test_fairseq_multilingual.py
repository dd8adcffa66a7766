"""M2M100 / NLLB-200 style checkpoints (fairseq's ``translation_multi_simple_epoch``
task) against fairseq itself: tiny random models built by fairseq's own option
parser, task and builders, read back by fairseq's loader; the reference
decodes with the task's ``inference_step`` (source langtok from its dataset
for inference, target langtok as ``SequenceGenerator``'s ``prefix_tokens``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import modelport
from modelport.errors import InvalidInputError, UnsupportedCheckpointError
from tests.helpers.cli import one_line_error
from tests.helpers.requires import requires

pytestmark = requires("fairseq", "sentencepiece")

LOGIT_TOL = 1e-4
SCORE_TOL = 1e-4
PAIRS = [(a, b) for a in ("en", "de", "fr") for b in ("en", "de", "fr") if a != b]


@pytest.fixture(scope="module")
def m2m(tmp_path_factory):
    """(checkpoint, ported model) of an M2M100-style model: --encoder-langtok src, --decoder-langtok."""
    from tests.helpers.fairseq_ref import build_multilingual_model

    root = tmp_path_factory.mktemp("m2m")
    path = build_multilingual_model(root / "fairseq")
    ported = modelport.convert(str(path.parent), root / "ported")
    # first use of fairseq's generator and of the search in this process (imports, allocator warm-up)
    _reference(path, "en", "de").generate(["x"], 1)
    ported.translate(["x"], beam=1, source_lang="en", target_lang="de")
    return path, ported


def _lines() -> list[str]:
    from tests.helpers.fairseq_ref import HARD_TEXT, corpus_lines

    return corpus_lines(4) + HARD_TEXT


def _reference(path: Path, src: str, tgt: str):
    from tests.helpers.fairseq_ref import MultilingualReference

    return MultilingualReference(path, src, tgt)


def test_dictionary_sizes_come_from_the_checkpoint(m2m) -> None:
    path, ported = m2m
    ref = _reference(path, "en", "de")
    rows = ref.models[0].encoder.embed_tokens.weight.shape[0]
    file_lines = len((path.parent / "model_dict.txt").read_text().splitlines())
    assert rows == len(ref.dict) == file_lines + 4 + 3  # specials + file (madeupwords incl.) + 3 language tokens
    assert (path.parent / "model_dict.txt").read_text().splitlines()[-1].startswith("madeupword")
    assert ported.config.source_vocab_size == ported.config.target_vocab_size == rows
    tok = ported.tokenizer
    assert tok.languages == ("en", "de", "fr")
    assert {lang: tok.lang_ids[lang] for lang in tok.languages} == {
        lang: ref.dict.index(f"__{lang}__") for lang in ("en", "de", "fr")}


def test_tokenizer_ids_identical(m2m) -> None:
    from tests.helpers.fairseq_ref import corpus_lines

    path, ported = m2m
    tok = ported.tokenizer
    lines = corpus_lines(100) + _lines()
    for src, tgt in (("en", "de"), ("fr", "en")):
        ref = _reference(path, src, tgt)
        assert [tok.encode(line) for line in lines] == [ref.encode(line) for line in lines]
        assert any(ref.dict.unk() in ref.encode(line) for line in lines)  # pieces missing from the dictionary
        # the source as the task's dataset for inference builds it: [__src__] + ids + [</s>]
        sample = ref.sample(lines[:8])
        prefix, decoder_prefix = tok.language_prefixes(src, tgt)
        assert prefix == [ref.dict.index(f"__{src}__")] and decoder_prefix == [ref.dict.index(f"__{tgt}__")]
        for i, sid in enumerate(sample["id"].tolist()):
            row = [t for t in sample["net_input"]["src_tokens"][i].tolist() if t != ref.dict.pad()]
            assert row == prefix + tok.encode(lines[sid])


def test_forward_parity(m2m) -> None:
    path, ported = m2m
    ref = _reference(path, "de", "fr")
    src = ref.sample(_lines()[:8])["net_input"]["src_tokens"]
    g = torch.Generator().manual_seed(0)
    prev = torch.randint(4, ported.config.target_vocab_size, (src.size(0), 7), generator=g)
    prev[:, 0] = 2
    prev[:, 1] = ref.dict.index("__fr__")
    model = ref.models[0]
    with torch.no_grad():
        expected = model(src, src.ne(1).sum(1), prev)[0].float()
        got = ported.model(src, prev)
        diff = (got - expected).abs().max().item()
        enc = ported.model.encode(src)
        state = ported.model.new_state()
        inc = torch.cat([ported.model.decode(prev[:, t: t + 1], enc, state) for t in range(prev.size(1))], 1)
    assert diff <= LOGIT_TOL, diff
    assert (inc - expected).abs().max().item() <= LOGIT_TOL


@pytest.mark.parametrize("beam", [1, 5])
@pytest.mark.parametrize("pair", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_beam_outputs_identical(m2m, pair, beam) -> None:
    path, ported = m2m
    src, tgt = pair
    lines = _lines()
    expected = _reference(path, src, tgt).generate(lines, beam)
    got = ported.translate(lines, beam=beam, source_lang=src, target_lang=tgt, batch_size=len(lines))
    assert [h[0].tokens for h in got] == [e["tokens"] for e in expected]
    assert [h[0].text for h in got] == [e["text"] for e in expected]
    assert max(abs(h[0].score - e["score"]) for h, e in zip(got, expected)) <= SCORE_TOL
    assert all(e["tokens"][0] == ported.tokenizer.lang_ids[tgt] for e in expected)  # the forced language token


def test_languages_are_required_and_named(m2m, capsys, tmp_path) -> None:
    _, ported = m2m
    with pytest.raises(InvalidInputError, match="known: en, de, fr"):
        ported.translate(["Hello"])
    with pytest.raises(InvalidInputError, match="`xx` is not a known target language .*known: en, de, fr"):
        ported.translate(["Hello"], source_lang="en", target_lang="xx")
    src = tmp_path / "in.txt"
    src.write_text("Hello world!\n", encoding="utf-8")
    line = one_line_error(["translate", str(ported.path), "-i", str(src), "--source-lang", "en"], capsys)
    assert "target language" in line and "en, de, fr" in line
    line = one_line_error(["translate", str(ported.path), "-i", str(src), "--source-lang", "qq", "--target-lang",
                           "de"], capsys)
    assert "`qq` is not a known source language" in line


def test_cli_translate_and_inspect(m2m, capsys, tmp_path) -> None:
    from modelport.cli import main

    path, ported = m2m
    src = tmp_path / "in.txt"
    lines = _lines()[:5]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["translate", str(ported.path), "-i", str(src), "--source-lang", "en", "--target-lang", "fr",
                 "--beam", "5", "--batch-size", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    expected = _reference(path, "en", "fr").generate(lines, 5)
    assert out == [e["text"] for e in expected]
    for source in (str(ported.path), str(path.parent)):
        assert main(["inspect", source]) == 0
        assert "languages (3): en, de, fr" in capsys.readouterr().out


def test_bilingual_port_refuses_languages(tmp_path) -> None:
    from tests.helpers.fairseq_ref import build_fairseq_model

    build_fairseq_model(tmp_path / "fairseq")
    ported = modelport.convert(str(tmp_path / "fairseq"), tmp_path / "ported")
    with pytest.raises(InvalidInputError, match="no language tokens"):
        ported.translate(["s1 s2"], source_lang="en", target_lang="de")


def test_encoder_tgt_langtok_nllb_names(tmp_path) -> None:
    """--encoder-langtok tgt without --decoder-langtok, NLLB-style language names."""
    from tests.helpers.fairseq_ref import build_multilingual_model

    path = build_multilingual_model(tmp_path / "fairseq", langs=("eng_Latn", "deu_Latn"), encoder_langtok="tgt",
                                    decoder_langtok=False)
    ported = modelport.convert(str(path.parent), tmp_path / "ported")
    assert ported.tokenizer.languages == ("eng_Latn", "deu_Latn")
    lines = _lines()[:12]
    ref = _reference(path, "eng_Latn", "deu_Latn")
    sample = ref.sample(lines[:3])
    assert sample["net_input"]["src_tokens"][0].tolist()[0] == ref.dict.index("__deu_Latn__")
    expected = ref.generate(lines, 5)
    got = ported.translate(lines, beam=5, source_lang="eng_Latn", target_lang="deu_Latn", batch_size=len(lines))
    assert [h[0].tokens for h in got] == [e["tokens"] for e in expected]
    assert [h[0].text for h in got] == [e["text"] for e in expected]


def _edited_copy(path: Path, dest: Path, edit) -> Path:
    shutil.copytree(path.parent, dest)
    ckpt = torch.load(dest / path.name, weights_only=False)
    edit(ckpt)
    torch.save(ckpt, dest / path.name)
    return dest


def test_moe_refused_by_name(m2m, tmp_path) -> None:
    path, _ = m2m

    def moe(ckpt):
        ckpt["cfg"]["model"].moe_expert_count = 4
        ckpt["model"]["encoder.layers.1.moe_layer.experts.0.fc1.weight"] = torch.zeros(2, 2)

    src = _edited_copy(path, tmp_path / "moe", moe)
    with pytest.raises(UnsupportedCheckpointError, match="NLLB-MoE"):
        modelport.inspect(str(src))


def test_task_options_refused_in_fairseq_names(m2m, tmp_path) -> None:
    path, _ = m2m

    def edit(ckpt):
        ckpt["cfg"]["task"].lang_tok_replacing_bos_eos = True
        ckpt["cfg"]["task"].langtoks_specs = ["main", "dae"]

    src = _edited_copy(path, tmp_path / "opts", edit)
    with pytest.raises(UnsupportedCheckpointError) as err:
        modelport.inspect(str(src))
    assert "--lang-tok-replacing-bos-eos" in str(err.value) and "--langtoks-specs main,dae" in str(err.value)


def test_embedding_rows_derived_from_checkpoint(m2m, tmp_path) -> None:
    """More rows than the task's symbols (padded further): converted, the extra ids
    decode as <unk>; fewer rows than the symbols (a language too many): refused."""
    path, ported = m2m

    def pad(ckpt):
        for side in ("encoder", "decoder"):
            key = f"{side}.embed_tokens.weight"
            ckpt["model"][key] = torch.cat([ckpt["model"][key], torch.zeros(5, ckpt["model"][key].size(1))])
        ckpt["model"]["decoder.output_projection.weight"] = ckpt["model"]["decoder.embed_tokens.weight"]

    src = _edited_copy(path, tmp_path / "padded", pad)
    padded = modelport.convert(str(src), tmp_path / "ported")
    assert padded.config.target_vocab_size == ported.config.target_vocab_size + 5
    assert padded.tokenizer.decode([padded.config.target_vocab_size - 1]) == "<unk>"
    more = tmp_path / "more"
    shutil.copytree(path.parent, more)
    (more / "lang_dict.txt").write_text("en\nde\nfr\nit\n", encoding="utf-8")
    with pytest.raises(UnsupportedCheckpointError, match="fewer than the 220 symbols"):
        modelport.inspect(str(more))


def test_mbart50_style(tmp_path) -> None:
    """mBART-50 many-to-many: mbart_large (pre-norm, final norms, layernorm_embedding, learned positions),
    --lang-tok-style mbart ([en_XX] tokens, then <mask>), source [src] prefix, decoder [tgt] forced."""
    from tests.helpers.fairseq_ref import build_multilingual_model

    langs = ("en_XX", "de_DE", "fr_XX")
    path = build_multilingual_model(tmp_path / "fairseq", langs=langs, lang_tok_style="mbart", arch="mbart_large")
    ported = modelport.convert(str(path.parent), tmp_path / "ported")
    cfg = ported.config
    assert cfg.pre_norm and cfg.final_norm and cfg.layernorm_embedding and cfg.positions == "learned"
    ref = _reference(path, "de_DE", "en_XX")
    tok = ported.tokenizer
    assert tok.lang_ids == {lang: ref.dict.index(f"[{lang}]") for lang in langs}
    assert tok.dict.index("<mask>") == ref.dict.index("<mask>") == len(ref.dict) - 1 == cfg.target_vocab_size - 1
    lines = _lines()
    assert [tok.encode(line) for line in lines] == [ref.encode(line) for line in lines]
    for beam in (1, 5):
        expected = ref.generate(lines, beam)
        got = ported.translate(lines, beam=beam, source_lang="de_DE", target_lang="en_XX", batch_size=len(lines))
        assert [h[0].tokens for h in got] == [e["tokens"] for e in expected]
        assert [h[0].text for h in got] == [e["text"] for e in expected]
        assert max(abs(h[0].score - e["score"]) for h, e in zip(got, expected)) <= SCORE_TOL
    from tests.helpers.requires import available

    if available("transformers"):
        from modelport.exporters.hf import export_hf

        # exported as MBartForConditionalGeneration; this fixture's dict.txt (fairseq-preprocess, frequency
        # order) lacks SentencePiece pieces, which no transformers tokenizer maps to <unk>: no tokenizer written
        report = export_hf(ported.path, tmp_path / "hf")
        assert report.tokenizer_class == "none"
        assert "SentencePiece pieces are not in dict.txt" in report.tokenizer_note


@requires("transformers")
def test_export_hf_languages_m2m100tokenizer_lacks(m2m, tmp_path) -> None:
    """Languages outside M2M100Tokenizer's fixed lists: the model exports, the tokenizer class is not
    used (and here, with pieces missing from dict.txt, no tokenizer is written, saying why)."""
    from modelport.exporters.hf import export_hf

    _, ported = m2m
    report = export_hf(ported.path, tmp_path / "hf")
    assert report.tokenizer_class == "none"
    assert "SentencePiece pieces are not in dict.txt" in report.tokenizer_note


@requires("transformers")
def test_export_hf_m2m100(tmp_path) -> None:
    """A model with M2M100's own 100 languages exports to M2M100ForConditionalGeneration + M2M100Tokenizer
    (verified on writing against modelport's hf search); checked again here against fairseq itself."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.models.m2m_100.tokenization_m2m_100 import FAIRSEQ_LANGUAGE_CODES

    from modelport.exporters.hf import export_hf
    from tests.helpers.fairseq_ref import build_multilingual_model, corpus_lines

    langs = tuple(FAIRSEQ_LANGUAGE_CODES["m2m100"])
    path = build_multilingual_model(tmp_path / "fairseq", langs=langs, pairs="en-de,de-en,en-fr")
    ported = modelport.convert(str(path.parent), tmp_path / "ported")
    report = export_hf(ported.path, tmp_path / "hf")
    assert report.model_class == "M2M100ForConditionalGeneration" and report.verification.passed
    hf_tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "hf")).eval()
    ref = _reference(path, "de", "fr")
    hf_tok.src_lang = "de"
    lines = corpus_lines(20)
    sample = ref.sample(lines)
    expected_src = {sid: [t for t in row if t != 1] for sid, row in
                    zip(sample["id"].tolist(), sample["net_input"]["src_tokens"].tolist())}
    assert [hf_tok(line)["input_ids"] for line in lines] == [expected_src[i] for i in range(len(lines))]
    src = sample["net_input"]["src_tokens"][:4]
    prev = torch.tensor([[2, hf_tok.get_lang_id("fr"), 7, 9, 11]]).expand(src.size(0), -1)
    with torch.no_grad():
        expected = ref.models[0](src, src.ne(1).sum(1), prev)[0].float()
        got = model(input_ids=src, attention_mask=src.ne(1), decoder_input_ids=prev).logits.float()
    assert (got - expected).abs().max().item() <= LOGIT_TOL
