"""Reference side for the parity tests: tiny fairseq models built with fairseq's
own builders, saved the way fairseq saves them, and run by fairseq.

Only this file (and other reference adapters) import fairseq; modelport's
converter never does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # reference side only, fixtures we made

LAYOUTS = ("cfg-dict", "cfg-omegaconf", "args-legacy")


def write_dict(path: Path, n_symbols: int, prefix: str) -> None:
    """A fairseq dictionary file with ``n_symbols`` entries after the 4 specials."""
    lines = [f"{prefix}{i} {1000 - i}" for i in range(n_symbols)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


_HISTORY = {"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "Adam",
            "lr_scheduler_state": {"best": 3.2}, "num_updates": 3}


class _Task:
    def __init__(self, src_dict: Any, tgt_dict: Any) -> None:
        self.source_dictionary = src_dict
        self.target_dictionary = tgt_dict


def build_fairseq_model(directory: Path, *, layout: str = "cfg-dict", src_vocab: int = 44, tgt_vocab: int = 52,
                        seed: int = 0, **overrides: Any) -> tuple[Any, Path]:
    """Build a random fairseq transformer, save it into ``directory`` with
    dictionaries, and return (fairseq model in eval mode, checkpoint path)."""
    from fairseq.data import Dictionary
    from fairseq.models.transformer import TransformerModel
    from fairseq.models.transformer.transformer_legacy import base_architecture

    directory.mkdir(parents=True, exist_ok=True)
    joined = overrides.get("share_all_embeddings", False)
    if joined:
        tgt_vocab = src_vocab
    write_dict(directory / "dict.en.txt", src_vocab - 4, "s" if not joined else "w")
    write_dict(directory / "dict.de.txt", tgt_vocab - 4, "t" if not joined else "w")
    src_dict = Dictionary.load(str(directory / "dict.en.txt"))
    tgt_dict = Dictionary.load(str(directory / "dict.de.txt"))

    args = argparse.Namespace(
        arch="transformer", encoder_embed_dim=32, encoder_ffn_embed_dim=64, encoder_layers=2,
        encoder_attention_heads=4, decoder_layers=2, decoder_attention_heads=4, dropout=0.0,
        max_source_positions=64, max_target_positions=64, source_lang="en", target_lang="de",
        task="translation", data=str(directory), left_pad_source=True, left_pad_target=False,
    )
    for k, v in overrides.items():
        setattr(args, k, v)
    base_architecture(args)
    torch.manual_seed(seed)
    model = TransformerModel.build_model(args, _Task(src_dict, tgt_dict))
    _nontrivial_norms_and_biases(model, position_std=0.5)
    model.eval()
    state = model.state_dict()
    path = directory / "model.pt"
    if layout == "args-legacy":
        state = _fuse_in_proj(state)
        ckpt = {"args": args, "model": state,
                "optimizer_history": [_HISTORY],
                "extra_state": {"epoch": 1}}
        torch.save(ckpt, path, _use_new_zipfile_serialization=False)
    else:
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf
        from omegaconf import OmegaConf

        cfg = convert_namespace_to_omegaconf(args)
        cfg_obj = (OmegaConf.to_container(cfg, resolve=True, enum_to_str=True) if layout == "cfg-dict" else cfg)
        ckpt = {"args": None, "cfg": cfg_obj, "model": state, "criterion": None,
                "optimizer_history": [_HISTORY],
                "task_state": {}, "extra_state": {"epoch": 1}, "last_optimizer_state": {"state": {}}}
        torch.save(ckpt, path)
    return model, path


def build_base_model(directory: Path, vocab: int = 32000) -> Path:
    """A random transformer-base-sized fairseq model (6+6 layers, d_model 512,
    FFN 2048, 8 heads, separate ``vocab``-sized dictionaries) for benchmarks."""
    build_fairseq_model(directory, src_vocab=vocab, tgt_vocab=vocab, encoder_embed_dim=512,
                        encoder_ffn_embed_dim=2048, encoder_layers=6, encoder_attention_heads=8,
                        decoder_layers=6, decoder_attention_heads=8, max_source_positions=1024,
                        max_target_positions=1024)
    return directory


def build_big_model(directory: Path, vocab: int = 32000) -> Path:
    """A random transformer-big-sized fairseq model (6+6 layers, d_model 1024,
    FFN 4096, 16 heads, one shared ``vocab``-sized dictionary) for benchmarks;
    returns the checkpoint's path."""
    _, path = build_fairseq_model(
        directory, src_vocab=vocab, encoder_embed_dim=1024, decoder_embed_dim=1024,
        encoder_ffn_embed_dim=4096, decoder_ffn_embed_dim=4096, encoder_layers=6, decoder_layers=6,
        encoder_attention_heads=16, decoder_attention_heads=16, share_all_embeddings=True,
        max_source_positions=1024, max_target_positions=1024)
    return path


def _fuse_in_proj(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The pre-0.7 fairseq layout: q/k/v fused into in_proj_weight/in_proj_bias."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if ".q_proj." in key:
            base, suffix = key.split(".q_proj.")
            out[f"{base}.in_proj_{suffix}"] = torch.cat(
                [value, state[f"{base}.k_proj.{suffix}"], state[f"{base}.v_proj.{suffix}"]], dim=0)
        elif ".k_proj." in key or ".v_proj." in key:
            continue
        else:
            out[key] = value
    return out


def load_with_fairseq(path: Path) -> Any:
    """Load a checkpoint with fairseq's own loader (the reference reading the file)."""
    from fairseq import checkpoint_utils

    models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task(
        [str(path)], arg_overrides={"data": str(path.parent)})
    return models[0].eval()


@torch.no_grad()
def fairseq_full_logits(model: Any, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    lengths = src.ne(1).sum(1)
    logits, _ = model(src, lengths, prev)
    return logits.float()


@torch.no_grad()
def fairseq_incremental_logits(model: Any, src: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
    lengths = src.ne(1).sum(1)
    enc = model.encoder(src, src_lengths=lengths)
    state: dict = {}
    steps = []
    for t in range(prev.size(1)):
        out, _ = model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        steps.append(out[:, -1:])
    return torch.cat(steps, dim=1).float()


def save_args_layout(cfg_checkpoint: Path, dest: Path) -> Path:
    """The weights of a ``cfg`` checkpoint that fairseq-train 0.12 wrote, saved
    again in the WMT19-era layout: the flat ``argparse.Namespace`` (which
    fairseq-train keeps as ``cfg['model']`` for legacy architectures) under
    ``args``, no ``cfg``, legacy (non-zip) serialization."""
    import copy

    ckpt = torch.load(cfg_checkpoint, map_location="cpu", weights_only=False)
    args = copy.copy(ckpt["cfg"]["model"])
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"{cfg_checkpoint}: cfg['model'] is {type(args).__name__}, not the flat Namespace")
    out = {"args": args, "model": ckpt["model"], "optimizer_history": ckpt.get("optimizer_history") or [_HISTORY],
           "extra_state": ckpt.get("extra_state") or {"epoch": 1}}
    dest.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, dest, _use_new_zipfile_serialization=False)
    return dest


# ---------------------------------------------------------------------------
# fairseq's translation_multi_simple_epoch task (M2M100 / NLLB-200 layout)

# lines of the languages' scripts and odd Unicode, beside the repo's corpus
HARD_TEXT = [
    "Hello world!", "  leading and   inner   spaces ", "tab\there", "Ünïcödé façade naïve — “quotes” ‘single’",
    "Привет, мир! Как дела?", "你好，世界。今天天气很好。", "こんにちは世界", "مرحبا بالعالم", "שלום עולם",
    "नमस्ते दुनिया", "Γειά σου Κόσμε", "emoji 😀🎉 and ZWJ 👩‍👩‍👧", "non\u00a0breaking\u3000ideographic space",
    "a\u200bzero width", "Supercalifragilisticexpialidocious-antidisestablishmentarianism", "1234567890 3.14 -42",
    "<unk> <s> </s> <pad> __en__ __de__", "", "x",
]
MULTI_LANGS = ("en", "de", "fr")


def in_translate_batches(generate: Callable[[list[list[int]]], list[Any]], srcs: Sequence[list[int]],
                         batch_size: int) -> list[Any]:
    """A reference's ``generate`` (one batch of token ids in, one result per line out) run on
    the batches modelport's ``translate`` forms from ``srcs`` at ``batch_size``, so that both
    sides see the same batches (padding, length caps), with the results back in input order."""
    from modelport.generation.translate import make_batches

    out: list[Any] = [None] * len(srcs)
    for batch in make_batches([len(s) for s in srcs], batch_size):
        for i, result in zip(batch, generate([srcs[i] for i in batch])):
            out[i] = result
    return out


def corpus_lines(n: int = 40) -> list[str]:
    root = Path(__file__).resolve().parents[2] / "assets" / "corpus"
    return (root / "test.en").read_text(encoding="utf-8").splitlines()[:n] + \
        (root / "test.de").read_text(encoding="utf-8").splitlines()[:n]


def train_spm(prefix: Path, vocab_size: int = 220, model_type: str = "unigram", required_chars: str = "") -> Path:
    """A small SentencePiece model trained on the repo's corpus (and the hard text's scripts);
    ``required_chars`` get pieces whatever their frequency (as a released model's ``<``, ``_`` have)."""
    import sentencepiece as spm

    root = Path(__file__).resolve().parents[2] / "assets" / "corpus"
    lines = (root / "train.en").read_text(encoding="utf-8").splitlines()[:3000] + \
        (root / "train.de").read_text(encoding="utf-8").splitlines()[:3000] + HARD_TEXT[4:12]
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_prefix=str(prefix), vocab_size=vocab_size,
                                   character_coverage=0.9995, minloglevel=2, model_type=model_type,
                                   required_chars=required_chars)
    return Path(f"{prefix}.model")


def write_spm_dict(spm_model: Path, path: Path, drop_last: int = 8, padding_factor: int = 8) -> None:
    """A fairseq dictionary of the pieces (as fairseq-preprocess writes it:
    counts, then ``madeupword`` padding to a multiple of ``padding_factor``);
    the last ``drop_last`` pieces are left out, so some pieces map to <unk>."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size()) if not (sp.is_control(i) or sp.is_unknown(i))]
    pieces = pieces[: len(pieces) - drop_last]
    lines = [f"{p} {1000 + len(pieces) - i}" for i, p in enumerate(pieces)]
    n, i = len(pieces) + 4, 0
    while n % padding_factor:
        lines.append(f"madeupword{i:04d} 0")
        n, i = n + 1, i + 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_spm_order_dict(spm_model: Path, path: Path) -> None:
    """dict.txt as mBART and NLLB-200 release it: every piece in SentencePiece's order after
    ``<unk> <s> </s>``, so a dictionary id is the piece id + 1 (fairseq's 4 specials), no padding."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model))
    path.write_text("".join(f"{sp.id_to_piece(i)} 1\n" for i in range(3, sp.get_piece_size())), encoding="utf-8")


def _spm_and_dict(directory: Path, dict_path: Path, langs: tuple[str, ...], dict_order: str, spm_type: str) -> Path:
    """The SentencePiece model and dictionary of a fixture: ``dict_order`` ``frequency``
    (fairseq-preprocess's, some pieces left out) or ``spm`` (the released layout; the
    special symbols' and language codes' characters get pieces, as in a released model)."""
    if dict_order == "frequency":
        spm_model = train_spm(directory / "spm", model_type=spm_type)
        write_spm_dict(spm_model, dict_path)
        return spm_model
    chars = "".join(sorted(set("<>/_" + "".join(langs))))
    spm_model = train_spm(directory / "spm", model_type=spm_type, required_chars=chars)
    write_spm_order_dict(spm_model, dict_path)
    return spm_model


def _fairseq_build(directory: Path, argv: list[str], seed: int) -> tuple[Any, Any, Any]:
    """(args, task, model) as fairseq-train builds them from ``argv``, run in
    ``directory`` (paths relative to where training runs, as fairseq-train records them)."""
    from fairseq import options, tasks

    cwd = os.getcwd()
    os.chdir(directory)
    try:
        args = options.parse_args_and_arch(options.get_training_parser(), argv)
        task = tasks.setup_task(args)
        torch.manual_seed(seed)
        model = task.build_model(args)
    finally:
        os.chdir(cwd)
    return args, task, model


def _save_cfg_checkpoint(args: Any, model: Any, path: Path) -> Path:
    """``model`` saved as fairseq 0.12's trainer saves a ``cfg`` checkpoint (no optimizer state)."""
    from fairseq.dataclass.utils import convert_namespace_to_omegaconf
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_container(convert_namespace_to_omegaconf(args), resolve=True, enum_to_str=True)
    torch.save({"args": None, "cfg": cfg, "model": model.state_dict(), "criterion": None,
                "optimizer_history": [_HISTORY], "task_state": {}, "extra_state": {"epoch": 1},
                "last_optimizer_state": {"state": {}}}, path)
    return path


def build_multilingual_model(directory: Path, *, langs: tuple[str, ...] = MULTI_LANGS, encoder_langtok: str = "src",
                             decoder_langtok: bool = True, lang_tok_style: str = "multilingual", seed: int = 0,
                             extra: tuple[str, ...] = (), eos_bias: float = 5.5, arch: str = "transformer",
                             pairs: str | None = None, dict_order: str = "frequency",
                             spm_type: str = "unigram") -> Path:
    """A random ``transformer`` of the ``translation_multi_simple_epoch`` task,
    built by fairseq's own option parser, task and builders as fairseq-train
    builds it (pre-norm, shared embeddings, a fixed dictionary, a relative
    --lang-dict), saved as fairseq-train 0.12 saves it (``cfg`` as plain
    dicts, ``cfg.task`` the argparse Namespace the task mutated)."""

    directory.mkdir(parents=True, exist_ok=True)
    _spm_and_dict(directory, directory / "model_dict.txt", langs, dict_order, spm_type)
    (directory / "lang_dict.txt").write_text("\n".join(langs) + "\n", encoding="utf-8")
    pairs = pairs or ",".join(f"{a}-{b}" for a in langs for b in langs if a != b)
    argv = [".", "--task", "translation_multi_simple_epoch", "--arch", arch, "--lang-dict", "lang_dict.txt",
            "--lang-pairs", pairs, "--fixed-dictionary", "model_dict.txt", "--lang-tok-style", lang_tok_style,
            "--share-all-embeddings", "--encoder-normalize-before", "--decoder-normalize-before",
            "--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
            "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4",
            "--decoder-attention-heads", "4", "--max-source-positions", "64", "--max-target-positions", "64",
            "--bpe", "sentencepiece", "--sentencepiece-model", "spm.model", "--dropout", "0.0", *extra]
    if encoder_langtok:
        argv += ["--encoder-langtok", encoder_langtok]
    if decoder_langtok:
        argv += ["--decoder-langtok"]
    args, task, model = _fairseq_build(directory, argv, seed)
    _nontrivial_norms_and_biases(model)
    with torch.no_grad():
        # a random tied-embedding model copies its last token forever; random-sign
        # output-norm gains and a bias towards </s> give varied outputs that stop
        # (lengths ~6-10 on the corpus, some at the length cap)
        _stopping_output(model.decoder.layer_norm, model.decoder.embed_tokens.weight[task.target_dictionary.eos()],
                         seed, eos_bias)
    return _save_cfg_checkpoint(args, model, directory / "checkpoint_best.pt")


class MultilingualReference:
    """fairseq itself on a multilingual checkpoint: its loader, its task's
    dataset for inference (source langtok) and ``inference_step`` (decoder
    langtok as ``prefix_tokens`` of ``SequenceGenerator``); the hub's
    ``translate()`` raises a TypeError for this task, so it is not used."""

    def __init__(self, path: Path, source_lang: str, target_lang: str) -> None:
        from argparse import Namespace

        from fairseq import checkpoint_utils
        from fairseq.data import encoders

        d = path.parent
        overrides = {"data": str(d), "source_lang": source_lang, "target_lang": target_lang}
        if (d / "lang_dict.txt").is_file():  # translation_multi_simple_epoch's relative paths
            overrides.update(lang_dict=str(d / "lang_dict.txt"), fixed_dictionary=str(d / "model_dict.txt"))
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides=overrides)
        self.models = [m.eval() for m in models]
        if not hasattr(task, "args"):
            # fairseq 0.12.3's translation_from_pretrained_bart reads `self.args` in build_dataset_for_inference
            # and build_generator, but TranslationTask keeps its options as `self.cfg` (fairseq-generate
            # crashes the same way): the same Namespace under the name it reads
            task.args = task.cfg
        self.task = task
        self.dict = task.source_dictionary
        self.bpe = encoders.build_bpe(Namespace(bpe="sentencepiece", sentencepiece_model=str(d / "spm.model"),
                                                sentencepiece_enable_sampling=False, sentencepiece_alpha=None))

    def encode(self, line: str) -> list[int]:
        return self.dict.encode_line(self.bpe.encode(line), add_if_not_exist=False, append_eos=True).long().tolist()

    def sample(self, lines: list[str]) -> dict[str, Any]:
        toks = [torch.tensor(self.encode(line)) for line in lines]
        ds = self.task.build_dataset_for_inference(toks, [t.numel() for t in toks])
        return ds.collater([ds[i] for i in range(len(toks))])

    @torch.no_grad()
    def generate(self, lines: list[str], beam: int) -> list[dict[str, Any]]:
        """Best hypothesis per line: tokens, score and the text fairseq prints."""
        from argparse import Namespace

        sample = self.sample(lines)
        gen = self.task.build_generator(self.models, Namespace(beam=beam))
        out = self.task.inference_step(gen, self.models, sample)
        res: list[dict[str, Any]] = [{} for _ in lines]
        for i, sid in enumerate(sample["id"].tolist()):
            h = out[i][0]
            text = self.dict.string(h["tokens"].int().cpu(), extra_symbols_to_ignore=gen.symbols_to_strip_from_output)
            res[sid] = {"tokens": h["tokens"].tolist(), "score": float(h["score"]),
                        "positional_scores": h["positional_scores"].tolist(), "text": self.bpe.decode(text),
                        "src_tokens": sample["net_input"]["src_tokens"][i].tolist()}
        return res


# ---------------------------------------------------------------------------
# BART (GPT-2 BPE, BARTHubInterface)


def make_gpt2_bpe(directory: Path) -> Path:
    """scripts/make_gpt2_bpe.py: encoder.json, vocab.bpe and dict.txt from the corpus."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "make_gpt2_bpe.py"
    spec = importlib.util.spec_from_file_location("make_gpt2_bpe", script)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module.make_gpt2_bpe(directory, 300, module.corpus(1500))


def _nontrivial_norms_and_biases(model: Any, position_std: float | None = None) -> None:
    """Every norm and bias moved off its initial value (and learned positions
    redrawn with ``position_std``), so a mis-mapped one shows up in the logits."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
            if position_std is not None and "embed_positions" in name:
                p.normal_(0, position_std)


def _stopping_output(norm: Any, eos_row: torch.Tensor, seed: int, eos_bias: float) -> None:
    """Random-sign gains and a bias towards </s> on the decoder's last norm (see build_multilingual_model)."""
    norm.weight.copy_(torch.randn(norm.weight.shape, generator=torch.Generator().manual_seed(seed)) * 2.0)
    norm.bias.copy_(eos_bias * eos_row / eos_row.norm())


def build_bart_model(directory: Path, *, task: str = "translation", arch: str = "bart_base", seed: int = 0,
                     eos_bias: float = 5.5, extra: tuple[str, ...] = ()) -> Path:
    """A random tiny BART of ``arch`` (fairseq's own parser, task and builders),
    with the GPT-2 BPE files of scripts/make_gpt2_bpe.py, saved as fairseq-train
    0.12 saves it. ``task``: ``translation`` (as bart-large-cnn, languages
    ``source``/``target``) or ``denoising`` (as bart.base: ``<mask>`` added)."""

    directory.mkdir(parents=True, exist_ok=True)
    make_gpt2_bpe(directory)
    argv = [".", "--task", task, "--arch", arch, "--bpe", "gpt2", "--gpt2-encoder-json", "encoder.json",
            "--gpt2-vocab-bpe", "vocab.bpe", "--encoder-layers", "2", "--decoder-layers", "2",
            "--encoder-embed-dim", "32", "--decoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
            "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
            "--max-source-positions", "64", "--max-target-positions", "64", "--dropout", "0.0", *extra]
    if task == "translation":
        for side in ("source", "target"):
            (directory / f"dict.{side}.txt").write_text((directory / "dict.txt").read_text("utf-8"), "utf-8")
        argv += ["-s", "source", "-t", "target"]
    else:
        argv += ["--tokens-per-sample", "64"]
    args, fs_task, model = _fairseq_build(directory, argv, seed)
    _nontrivial_norms_and_biases(model, position_std=0.1)
    with torch.no_grad():
        dec = model.decoder
        last = dec.layer_norm if dec.layer_norm is not None else dec.layers[-1].final_layer_norm
        _stopping_output(last, dec.embed_tokens.weight[fs_task.target_dictionary.eos()], seed, eos_bias)
    return _save_cfg_checkpoint(args, model, directory / "model.pt")


def load_bart_hub(path: Path) -> Any:
    """``BARTModel.from_pretrained`` (the hub interface BART users call), on CPU, eval."""
    from fairseq.models.bart import BARTModel

    d = path.parent
    cwd = os.getcwd()
    os.chdir(d)  # the checkpoint records its BPE files relative to where it was trained
    try:  # (a denoising task's config has a `bpe` string field: no bpe overrides can be passed)
        hub = BARTModel.from_pretrained(str(d), checkpoint_file=path.name, data_name_or_path=str(d))
    finally:
        os.chdir(cwd)
    return hub.eval()


def build_mbart_finetune_model(directory: Path, *, langs: tuple[str, ...] = ("en_XX", "de_DE", "fr_XX"),
                               source_lang: str = "en_XX", target_lang: str = "de_DE", seed: int = 0,
                               eos_bias: float = 0.0, dict_order: str = "frequency") -> Path:
    """A random tiny mBART-25-style fine-tune: ``mbart_large`` (pre-norm) of the
    ``translation_from_pretrained_bart`` task (``--langs``, dict.<lang>.txt),
    built by fairseq's parser, task and builders; random-sign output-norm gains
    (and ``eos_bias`` towards ``[target_lang]``, the token that task's
    generator starts from and stops on) give outputs that stop on it."""

    directory.mkdir(parents=True, exist_ok=True)
    _spm_and_dict(directory, directory / "dict.txt", langs, dict_order, "unigram")
    for lang in langs:
        (directory / f"dict.{lang}.txt").write_text((directory / "dict.txt").read_text("utf-8"), "utf-8")
    argv = [".", "--task", "translation_from_pretrained_bart", "--arch", "mbart_large", "--langs", ",".join(langs),
            "-s", source_lang, "-t", target_lang, "--bpe", "sentencepiece", "--sentencepiece-model", "spm.model",
            "--encoder-normalize-before", "--decoder-normalize-before", "--encoder-layers", "2",
            "--decoder-layers", "2", "--encoder-embed-dim", "32", "--decoder-embed-dim", "32",
            "--encoder-ffn-embed-dim", "64", "--decoder-ffn-embed-dim", "64", "--encoder-attention-heads", "4",
            "--decoder-attention-heads", "4", "--max-source-positions", "64", "--max-target-positions", "64",
            "--dropout", "0.0"]
    args, task, model = _fairseq_build(directory, argv, seed)
    _nontrivial_norms_and_biases(model)
    with torch.no_grad():
        stop = task.target_dictionary.index(f"[{target_lang}]")
        _stopping_output(model.decoder.layer_norm, model.decoder.embed_tokens.weight[stop], seed, eos_bias)
    return _save_cfg_checkpoint(args, model, directory / "checkpoint_best.pt")
