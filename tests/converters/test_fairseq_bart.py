"""BART checkpoints against fairseq's ``BARTModel.from_pretrained`` hub interface
(``<s>`` before the source, ``<s>`` forced as the first target token), with a
GPT-2 byte-level BPE made from the repo's corpus by scripts/make_gpt2_bpe.py."""

from __future__ import annotations

import shutil

import pytest
import torch

import modelport
from modelport.errors import InvalidInputError, UnsupportedCheckpointError
from tests.helpers.requires import requires

pytestmark = requires("fairseq", "regex", "tokenizers")

LOGIT_TOL = 1e-4
SCORE_TOL = 1e-4


@pytest.fixture(scope="module")
def bart(tmp_path_factory):
    """(checkpoint, fairseq hub, ported) of a bart_base fine-tuned on the translation task (as bart-large-cnn)."""
    from tests.helpers.fairseq_ref import build_bart_model, load_bart_hub

    root = tmp_path_factory.mktemp("bart")
    path = build_bart_model(root / "fairseq")
    return path, load_bart_hub(path), modelport.convert(str(path.parent), root / "ported")


def _lines(n: int = 6) -> list[str]:
    from tests.helpers.fairseq_ref import HARD_TEXT, corpus_lines

    return corpus_lines(n) + HARD_TEXT


def test_config_and_dictionary(bart) -> None:
    path, hub, ported = bart
    cfg = ported.config
    assert cfg.positions == "learned" and cfg.position_offset == 2 and cfg.layernorm_embedding
    assert not cfg.pre_norm and not cfg.scale_embeddings and cfg.activation == "gelu"
    assert cfg.target_vocab_size == len(hub.task.source_dictionary) == hub.model.encoder.embed_tokens.weight.size(0)
    assert ported.tokenizer.kind == "fairseq_gpt2_bpe"


def test_tokenizer_ids_and_text_identical(bart) -> None:
    from tests.helpers.fairseq_ref import corpus_lines

    _, hub, ported = bart
    tok = ported.tokenizer
    prefix, decoder_prefix = tok.language_prefixes(None, None)
    assert prefix == decoder_prefix == [hub.task.source_dictionary.bos()]
    lines = corpus_lines(100) + _lines()
    for line in lines:
        expected = hub.encode(line).tolist()
        assert prefix + tok.encode(line) == expected, line
        assert tok.decode(expected) == hub.decode(torch.tensor(expected)), line


def test_forward_parity(bart) -> None:
    _, hub, ported = bart
    tok = ported.tokenizer
    rows = [hub.encode(line).tolist() for line in _lines()[:6]]
    width = max(map(len, rows))
    src = torch.tensor([[1] * (width - len(r)) + r for r in rows])
    g = torch.Generator().manual_seed(0)
    prev = torch.randint(4, ported.config.target_vocab_size, (len(rows), 6), generator=g)
    prev[:, 0], prev[:, 1] = tok.eos_id, tok.bos_id
    hub.model.set_beam_size(1)  # generate() leaves its beam size in the attention modules
    with torch.no_grad():
        expected = hub.model(src, src.ne(1).sum(1), prev)[0].float()
        diff = (ported.model(src, prev) - expected).abs().max().item()
    assert diff <= LOGIT_TOL, diff


@pytest.mark.parametrize("beam", [1, 5])
def test_beam_outputs_identical_to_hub(bart, beam) -> None:
    _, hub, ported = bart
    lines = _lines()
    expected = hub.generate([hub.encode(line) for line in lines], beam=beam)
    got = ported.translate(lines, beam=beam, batch_size=len(lines))
    assert [h[0].tokens for h in got] == [e[0]["tokens"].tolist() for e in expected]
    assert [h[0].text for h in got] == [hub.decode(e[0]["tokens"]) for e in expected]
    assert max(abs(h[0].score - float(e[0]["score"])) for h, e in zip(got, expected)) <= SCORE_TOL
    assert all(e[0]["tokens"][0].item() == hub.task.source_dictionary.bos() for e in expected)


def test_languages_refused(bart) -> None:
    _, _, ported = bart
    with pytest.raises(InvalidInputError, match="no language tokens"):
        ported.translate(["Hello"], source_lang="en", target_lang="de")


def test_denoising_checkpoint_keeps_mask_row(tmp_path) -> None:
    """bart.base-style (denoising task): <mask> appended after dict.txt; forward parity with fairseq's loader."""
    from tests.helpers.fairseq_ref import build_bart_model, load_with_fairseq

    path = build_bart_model(tmp_path / "fairseq", task="denoising")
    reference = load_with_fairseq(path)
    ported = modelport.convert(str(path.parent), tmp_path / "ported")
    file_symbols = len((path.parent / "dict.txt").read_text().splitlines())
    assert ported.config.target_vocab_size == file_symbols + 4 + 1 == reference.encoder.embed_tokens.weight.size(0)
    assert ported.tokenizer.dict.index("<mask>") == file_symbols + 4
    src = torch.tensor([[0] + ported.tokenizer.encode("Anna stays at work.")])
    prev = torch.tensor([[2, 0, 5, 6, 7]])
    with torch.no_grad():
        expected = reference(src, src.ne(1).sum(1), prev)[0].float()
        assert (ported.model(src, prev) - expected).abs().max().item() <= LOGIT_TOL


def test_finetune_task_without_langs_refused_by_name(bart, tmp_path) -> None:
    path, _, _ = bart
    dest = tmp_path / "mbart25"
    shutil.copytree(path.parent, dest)
    ckpt = torch.load(dest / path.name, weights_only=False)
    task = ckpt["cfg"]["task"]
    if isinstance(task, dict):
        task["_name"] = "translation_from_pretrained_bart"
    else:
        task.task = "translation_from_pretrained_bart"
    torch.save(ckpt, dest / path.name)
    with pytest.raises(UnsupportedCheckpointError, match="translation_from_pretrained_bart without --langs"):
        modelport.inspect(str(dest))


@requires("transformers")
def test_export_hf_bart_matches_fairseq(bart, tmp_path) -> None:
    """export hf writes BartForConditionalGeneration (verified on writing); checked again here against
    fairseq itself: the transformers tokenizer's ids and logits equal the BART hub's."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from modelport.exporters.hf import export_hf

    _, hub, ported = bart
    report = export_hf(ported.path, tmp_path / "hf")
    assert report.model_class == "BartForConditionalGeneration" and report.verification.passed
    assert report.generation_config["forced_bos_token_id"] == 0
    hf_tok = AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    model = AutoModelForSeq2SeqLM.from_pretrained(str(tmp_path / "hf")).eval()
    from tests.helpers.fairseq_ref import corpus_lines

    lines = corpus_lines(30)
    assert [hf_tok(line)["input_ids"] for line in lines] == [hub.encode(line).tolist() for line in lines]
    src = hub.encode(lines[0]).unsqueeze(0)
    prev = torch.tensor([[2, 0, 7, 9, 11]])
    hub.model.set_beam_size(1)  # generate() leaves its beam size in the attention modules
    with torch.no_grad():
        expected = hub.model(src, src.ne(1).sum(1), prev)[0].float()
        got = model(input_ids=src, decoder_input_ids=prev).logits.float()
    assert (got - expected).abs().max().item() <= LOGIT_TOL




def test_mbart25_finetune_decodes_from_and_stops_on_target_language(tmp_path) -> None:
    """translation_from_pretrained_bart (mBART-25 fine-tunes): source ids + </s> + [src]; the decoder starts
    from [tgt] and stops on it (SequenceGenerator(eos=[tgt])), against that task's own inference."""
    from tests.helpers.fairseq_ref import MultilingualReference, build_mbart_finetune_model

    src, tgt = "en_XX", "de_DE"  # the fine-tune's own direction
    path = build_mbart_finetune_model(tmp_path / "fairseq")
    ported = modelport.convert(str(path.parent), tmp_path / "ported")
    cfg, tok = ported.config, ported.tokenizer
    assert cfg.pre_norm and cfg.final_norm and cfg.layernorm_embedding and cfg.scale_embeddings
    ref = MultilingualReference(path, src, tgt)
    assert tok.lang_ids == {x: ref.dict.index(f"[{x}]") for x in ("en_XX", "de_DE", "fr_XX")}
    assert tok.dict.index("<mask>") == ref.dict.index("<mask>") == cfg.target_vocab_size - 1
    lines = _lines(4)
    sample = ref.sample(lines)
    for i, sid in enumerate(sample["id"].tolist()):
        row = [t for t in sample["net_input"]["src_tokens"][i].tolist() if t != 1]
        assert row == tok.encode(lines[sid]) + [tok.lang_ids[src]]
    for beam in (1, 5):
        expected = ref.generate(lines, beam)
        got = ported.translate(lines, beam=beam, source_lang=src, target_lang=tgt, batch_size=len(lines))
        assert [h[0].tokens for h in got] == [e["tokens"] for e in expected]
        assert [h[0].text for h in got] == [e["text"] for e in expected]
        assert max(abs(h[0].score - e["score"]) for h, e in zip(got, expected)) <= SCORE_TOL
        assert all(e["tokens"][-1] == tok.lang_ids[tgt] for e in expected if len(e["tokens"]) < 63)
    with pytest.raises(InvalidInputError, match="cannot decode from and stop on the target language token"):
        ported.translate(lines[:1], source_lang=src, target_lang=tgt, semantics="hf")
