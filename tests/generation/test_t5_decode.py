"""T5 ports print what T5 users print: transformers' ``generate`` followed by
``T5Tokenizer.decode(ids, skip_special_tokens=True)``.

Random-weight T5 models emit sentinels (``<extra_id_N>``), ``<unk>`` and ids
past the tokenizer's vocabulary (the model's vocab_size is larger, as in the
released checkpoints: 32128 rows for 32100 pieces) all the time, so every
kind of special output is exercised here. The reference strings come from
transformers' own model, generate and tokenizer; modelport's come from
``translate`` and ``modelport translate``/``tokenize --decode``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

import modelport

transformers = pytest.importorskip("transformers")

from tests.helpers.paths import CORPUS  # noqa: E402
from tests.converters.test_t5_parity import build_hf_t5  # noqa: E402

from modelport.cli import main  # noqa: E402

N_LINES = 24
OPTIONS = {"num_beams": 1, "max_new_tokens": 16}
BEAM = {"num_beams": 4, "max_new_tokens": 16}  # transformers' beam search is slow: a few lines only


# T5 v1.1 and mT5 shapes (gated GELU, untied output); seed 11 makes both emit
# sentinels on every line (a random v1.0 model mostly repeats one piece)
@pytest.fixture(scope="module", params=["v1.1", "mt5"])
def t5(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"t5dec-{request.param}")
    ref = build_hf_t5(tmp / "hf", request.param, seed=11)
    ported = modelport.convert(str(tmp / "hf"), tmp / "ported")
    tok = transformers.T5Tokenizer.from_pretrained(str(tmp / "hf"))
    lines = (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]
    ref_ids, ref_texts = _reference(ref, ported, tok, lines)
    beam = _reference(ref, ported, tok, lines[:4], BEAM)
    return ported, tok, lines, ref_ids, ref_texts, tmp, beam


def _reference(ref, ported, tok, lines: list[str], options: dict = OPTIONS) -> tuple[list[list[int]], list[str]]:
    """transformers' generate on the port's source ids, one line at a time (no
    padding, so no batching question), and its tokenizer's default decode."""
    ids, texts = [], []
    start = ported.config.decoder_start_token_id
    for line in lines:
        src = torch.tensor([ported.tokenizer.encode(line)])
        with torch.no_grad():
            out = ref.generate(input_ids=src, attention_mask=torch.ones_like(src), do_sample=False,
                               decoder_start_token_id=start, **options)
        toks = out[0].tolist()[1:]  # drop the decoder start token
        if tok.eos_token_id in toks:
            toks = toks[: toks.index(tok.eos_token_id) + 1]
        ids.append(toks)
        texts.append(tok.decode(toks, skip_special_tokens=True))
    return ids, texts


def test_translate_strings_equal_transformers_decode(t5) -> None:
    ported, tok, lines, ref_ids, ref_texts, _, beam = t5
    ours = ported.translate(lines, **OPTIONS)
    assert [h[0]["tokens"] for h in ours] == ref_ids
    assert [h[0]["text"] for h in ours] == ref_texts
    sentinels = range(ported.tokenizer.sentinel_id(99), ported.tokenizer.sentinel_id(0) + 1)
    with_sentinels = sum(any(t in sentinels for t in ids) for ids in ref_ids)
    assert with_sentinels >= N_LINES // 4, with_sentinels  # the case the test is about happens
    assert not any("<extra_id_" in t for t in ref_texts)
    ours_beam = ported.translate(lines[:4], **BEAM)
    assert [h[0]["tokens"] for h in ours_beam] == beam[0]
    assert [h[0]["text"] for h in ours_beam] == beam[1]

    kept = ported.translate(lines[:10], keep_special_tokens=True, **OPTIONS)
    for line_ids, hyps in zip(ref_ids, kept):
        real = [t for t in line_ids if t not in (tok.eos_token_id, tok.pad_token_id)]
        assert hyps[0]["text"] == tok.decode(real, skip_special_tokens=False)
    assert sum("<extra_id_" in h[0]["text"] for h in kept) == sum(any(t in sentinels for t in ids)
                                                                  for ids in ref_ids[:10])


def test_decode_of_any_ids_equals_transformers(t5) -> None:
    """Every id of the model's vocabulary (pieces, <unk>, sentinels, ids the
    tokenizer has no piece for), in random sequences, both decode modes."""
    ported, tok = t5[:2]
    rng = random.Random(0)
    vocab = ported.config.target_vocab_size
    assert vocab > len(tok)  # ids past the tokenizer's vocabulary exist
    for _ in range(3000):
        ids = [rng.randrange(vocab) for _ in range(rng.randrange(12))]
        assert ported.tokenizer.decode(ids) == tok.decode(ids, skip_special_tokens=True), ids
        real = [i for i in ids if i not in (tok.eos_token_id, tok.pad_token_id)]
        assert ported.tokenizer.decode(ids, keep_special_tokens=True) == \
            tok.decode(real, skip_special_tokens=False), ids


def test_cli_translate_and_tokenize_decode(t5, capsys) -> None:
    ported, tok, lines, ref_ids, ref_texts, tmp, _ = t5
    lines, ref_ids, ref_texts = lines[:12], ref_ids[:12], ref_texts[:12]
    src = tmp / "src.txt"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    flags = ["--beam", str(OPTIONS["num_beams"])]
    # max_new_tokens has no translate flag: the folder's default, set here as the reference used it
    gen = ported.path / "generation_config.json"
    cfg = json.loads(gen.read_text())
    gen.write_text(json.dumps({**cfg, "max_new_tokens": OPTIONS["max_new_tokens"]}))
    try:
        assert main(["translate", str(ported.path), "-i", str(src), *flags]) == 0
        assert capsys.readouterr().out.splitlines() == ref_texts
        assert main(["translate", str(ported.path), "-i", str(src), "--keep-special-tokens", *flags]) == 0
        kept = capsys.readouterr().out.splitlines()
        assert kept == [tok.decode([t for t in ids if t not in (0, 1)]) for ids in ref_ids]
    finally:
        gen.write_text(json.dumps(cfg))
    id_file = tmp / "ids.txt"
    id_file.write_text("\n".join(" ".join(map(str, ids)) for ids in ref_ids) + "\n")
    assert main(["tokenize", str(ported.path), "--decode", "-i", str(id_file)]) == 0
    assert capsys.readouterr().out.splitlines() == ref_texts
    assert main(["tokenize", str(ported.path), "--decode", "--keep-special-tokens", "-i", str(id_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [tok.decode([t for t in ids if t not in (0, 1)])
                                                   for ids in ref_ids]


def test_keep_special_tokens_refused_where_nothing_is_skipped(ported_default, tmp_path, capsys) -> None:
    from tests.helpers.cli import one_line_error

    src = tmp_path / "src.txt"
    src.write_text("Hello world!\n")
    line = one_line_error(["translate", str(ported_default.path), "-i", str(src), "--keep-special-tokens"], capsys)
    assert "keep_special_tokens" in line and "fairseq_moses_bpe" in line


_PUNCT_TEXT = ["it 's a dog . is it ? yes ! they 're here , we 've seen them", "do n't go . i 'm here ' ok '",
               "the dog 's bone , the cat 's toy . why ? because !"] * 30


@pytest.mark.parametrize("clean_up", [True, False])
def test_clean_up_tokenization_spaces_follows_the_source_folder(tmp_path, clean_up) -> None:
    """A T5 folder whose tokenizer_config.json sets clean_up_tokenization_spaces
    decodes with transformers' clean-up (" ." -> ".", " 's" -> "'s", ...)."""
    import io

    import sentencepiece as spm

    src = tmp_path / "hf"
    build_hf_t5(src, "v1.1", spm=False)
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_PUNCT_TEXT), model_writer=buf, vocab_size=56,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
                                   hard_vocab_limit=False, minloglevel=2)
    (src / "spiece.model").write_bytes(buf.getvalue())
    (src / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": clean_up}))
    ported = modelport.convert(str(src), tmp_path / "ported")
    tok = transformers.T5Tokenizer.from_pretrained(str(src))
    assert tok.clean_up_tokenization_spaces is clean_up
    changed = 0
    for line in _PUNCT_TEXT[:3]:
        ids = ported.tokenizer.encode(line)
        expected = tok.decode(ids, skip_special_tokens=True)
        assert ported.tokenizer.decode(ids) == expected
        changed += expected != tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
    assert (changed == 3) is clean_up
    # an `export hf` folder keeps the setting, so transformers decodes it as the port does
    assert main(["export", "hf", str(ported.path), str(tmp_path / "exported"), "--data", str(_lines(tmp_path))]) == 0
    exported = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "exported"))
    assert exported.clean_up_tokenization_spaces is clean_up


def _lines(tmp_path) -> Path:
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(_PUNCT_TEXT[:3]) + "\n")
    return path


def test_bad_clean_up_setting_is_refused(tmp_path, capsys) -> None:
    from tests.helpers.cli import one_line_error

    src = tmp_path / "hf"
    build_hf_t5(src, "v1.1")
    (src / "tokenizer_config.json").write_text(json.dumps({"clean_up_tokenization_spaces": "yes"}))
    capsys.readouterr()  # transformers' save progress
    line = one_line_error(["convert", str(src), str(tmp_path / "out")], capsys)
    assert "clean_up_tokenization_spaces" in line and "supported: true, false" in line
