#!/usr/bin/env python3
"""Helpers shared by scripts/make_default_model.sh and scripts/make_prenorm_model.sh.

Reference-side tooling only (it drives fairseq itself, not modelport).

Subcommands:
  build-fastbpe WORKDIR
        pip-download the fastBPE sdist and compile its `fast` command line
        tool (the learner; the pip wheel only ships the apply side) into
        WORKDIR/fast. Prints the path of the binary.
  piglatin CORPUS_DIR OUT_DIR [--long-every N]
        Write {train,valid,test}.{en,pg}: the English side of CORPUS_DIR and
        its Pig Latin (language code `pg`, which Moses does not know), made
        by a fixed rule; every N-th line is joined with the next two into
        one long line (apostrophes and double quotes are kept as they are).
  prepare-data CORPUS_DIR OUT_DIR --fast BIN [--codes FILE] [--n-codes N]
               [--src en] [--tgt de] [--tgt-moses LANG]
        Moses-tokenize {train,valid,test}.{SRC,TGT} exactly like fairseq's
        hub interface does with tokenizer='moses' (the target side with the
        rules of --tgt-moses, default TGT), learn joint BPE codes with
        `fast learnbpe` (unless --codes is given) and apply them with the
        fastBPE python module (the same code path as bpe='fastbpe').
  strip CKPT OUT
        Drop the optimizer state from a fairseq training checkpoint the way
        released fairseq models are shipped.
  evaluate MODEL_DIR CORPUS_DIR [--beam 5] [--out HYP_FILE] [--src en] [--tgt de]
           [--no-hub-langs]
        Translate CORPUS_DIR/test.SRC with TransformerModel.from_pretrained
        (the hub interface; source_lang/target_lang passed unless
        --no-hub-langs) and print sacreBLEU against test.TGT.
  describe CKPT
        Print parameter count and checkpoint layout.
  spm-data CORPUS_DIR OUT_DIR [--vocab 1000] [--src en] [--tgt de]
        Train a SentencePiece BPE model (OUT_DIR/spm.model, one thread, fixed
        seed) on train.{SRC,TGT} and write {split}.bpe.{lang} the way fairseq's
        sentencepiece encoder splits them.
  gpt2-data CORPUS_DIR OUT_DIR --bpe-dir DIR [--src en] [--tgt de]
        Encode {split}.{lang} with fairseq's own GPT-2 BPE (DIR/encoder.json,
        vocab.bpe) into {split}.bpe.{lang}: ``<s>`` then the ids, as
        BARTHubInterface.encode wraps a sentence (the task appends ``</s>``).
  evaluate-multilingual MODEL_DIR CORPUS_DIR --pairs en-de,de-en [--beam 5]
        Translate test.SRC of each pair with the translation_multi_simple_epoch
        task's own inference (SequenceGenerator, target langtok as prefix) and
        print sacreBLEU, exact matches and how many outputs stop early.
  evaluate-bart MODEL_DIR CORPUS_DIR [--beam 5] [--src en] [--tgt de]
        The same through BARTModel.from_pretrained(...).sample.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
VENV_BIN = os.path.dirname(sys.executable)


def log(msg):
    print(f"[fixture] {msg}", flush=True)


# ---------------------------------------------------------------------------
# fastBPE learner
# ---------------------------------------------------------------------------

def build_fastbpe(workdir):
    os.makedirs(workdir, exist_ok=True)
    binary = os.path.join(workdir, "fast")
    if os.path.exists(binary):
        return binary
    dl = os.path.join(workdir, "sdist")
    os.makedirs(dl, exist_ok=True)
    log("downloading the fastBPE sdist (pip download --no-deps --no-binary :all: fastbpe)")
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "-d", dl, "fastbpe"], check=True)
    archives = glob.glob(os.path.join(dl, "*.tar.gz")) + glob.glob(os.path.join(dl, "*.zip"))
    if not archives:
        raise SystemExit("fastBPE sdist not found after pip download")
    src = os.path.join(workdir, "src")
    with tarfile.open(archives[0]) as tf:
        tf.extractall(src)
    mains = glob.glob(os.path.join(src, "*", "fastBPE", "main.cc"))
    if not mains:
        raise SystemExit("fastBPE/main.cc not found in the sdist")
    main_cc = mains[0]
    inc = os.path.dirname(main_cc)
    log(f"compiling {os.path.relpath(main_cc, workdir)} with g++")
    subprocess.run(["g++", "-std=c++11", "-pthread", "-O3", main_cc, "-I" + inc,
                    "-o", binary], check=True)
    return binary


# ---------------------------------------------------------------------------
# Tokenization / BPE
# ---------------------------------------------------------------------------

def moses_tokenizer(lang):
    """The exact configuration of fairseq.data.encoders.moses_tokenizer with its
    defaults (moses_no_dash_splits=False, moses_no_escape=False)."""
    from fairseq.data.encoders.moses_tokenizer import MosesTokenizerConfig
    from sacremoses import MosesTokenizer

    cfg = MosesTokenizerConfig()
    tok = MosesTokenizer(lang)

    def encode(line):
        return tok.tokenize(line, aggressive_dash_splits=not cfg.moses_no_dash_splits,
                            return_str=True, escape=not cfg.moses_no_escape)

    return encode


def prepare_data(corpus, out, fast, codes=None, n_codes=3000, src_lang="en", tgt_lang="de", tgt_moses=None):
    import fastBPE

    os.makedirs(out, exist_ok=True)
    splits = ("train", "valid", "test")
    for lang in (src_lang, tgt_lang):
        enc = moses_tokenizer((tgt_moses or tgt_lang) if lang == tgt_lang else lang)
        for split in splits:
            src = os.path.join(corpus, f"{split}.{lang}")
            dst = os.path.join(out, f"{split}.tok.{lang}")
            with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
                n = 0
                for line in f:
                    g.write(enc(line.rstrip("\n")) + "\n")
                    n += 1
            log(f"moses-tokenized {split}.{lang} ({n} lines)")
    codes_out = os.path.join(out, "bpecodes")
    if codes:
        log(f"reusing BPE codes from {codes}")
        shutil.copyfile(codes, codes_out)
    else:
        log(f"learning {n_codes} joint BPE merges: fast learnbpe {n_codes} train.tok.{src_lang} train.tok.{tgt_lang}")
        with open(codes_out, "w", encoding="utf-8") as g:
            subprocess.run([fast, "learnbpe", str(n_codes),
                            os.path.join(out, f"train.tok.{src_lang}"),
                            os.path.join(out, f"train.tok.{tgt_lang}")], stdout=g, check=True)
    n_lines = sum(1 for _ in open(codes_out, encoding="utf-8"))
    log(f"bpecodes: {n_lines} merges")
    bpe = fastBPE.fastBPE(codes_out)
    for lang in (src_lang, tgt_lang):
        for split in splits:
            src = os.path.join(out, f"{split}.tok.{lang}")
            dst = os.path.join(out, f"{split}.bpe.{lang}")
            with open(src, encoding="utf-8") as f:
                lines = [l.rstrip("\n") for l in f]
            # one line at a time, exactly as fairseq's fastbpe encoder calls it
            with open(dst, "w", encoding="utf-8") as g:
                for line in lines:
                    g.write(bpe.apply([line])[0] + "\n")
    log("applied BPE with the fastBPE python module")


# ---------------------------------------------------------------------------
# Pig Latin (a target language Moses does not know)
# ---------------------------------------------------------------------------

_VOWELS = "aeiouAEIOU"
# a word: letters, then any number of apostrophe + letters ("let's", "o'clock")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")


def _pig_word(word):
    """One word in Pig Latin: the letters before the first apostrophe move
    their leading consonants (``qu`` counted as one, ``y`` a vowel after the
    first letter) to the end and add ``ay`` (``way`` after a vowel); the
    apostrophe part stays: let's -> etlay's, o'clock -> oway'clock,
    Quiet -> Ietquay."""
    head, sep, tail = word.partition("'")
    lower = head.lower()
    i = 0
    while i < len(lower) and lower[i] not in "aeiou" and not (i > 0 and lower[i] == "y"):
        i += 2 if lower[i:i + 2] == "qu" else 1
    core = lower + "way" if i == 0 else lower[i:] + lower[:i] + "ay"
    if head.isupper() and len(head) > 1:
        core = core.upper()
    elif head[0].isupper():
        core = core[0].upper() + core[1:]
    return core + sep + tail


def piglatin(line):
    """``line`` with every word in Pig Latin; everything else (punctuation,
    digits, quotes, spacing) unchanged."""
    return _WORD.sub(lambda m: _pig_word(m.group(0)), line)


def write_piglatin_corpus(corpus, out, long_every=20):
    """{train,valid,test}.{en,pg} from CORPUS/*.en; line i with i % long_every
    == long_every - 1 is joined with lines i+1 and i+2 (long sentences)."""
    os.makedirs(out, exist_ok=True)
    for split in ("train", "valid", "test"):
        with open(os.path.join(corpus, f"{split}.en"), encoding="utf-8") as f:
            lines = [l.rstrip("\n") for l in f]
        src = [" ".join(lines[i:i + 3]) if i % long_every == long_every - 1 else l for i, l in enumerate(lines)]
        for lang, text in (("en", src), ("pg", [piglatin(l) for l in src])):
            with open(os.path.join(out, f"{split}.{lang}"), "w", encoding="utf-8") as g:
                g.write("\n".join(text) + "\n")
        log(f"{split}: {len(src)} lines, {sum(1 for i in range(len(src)) if i % long_every == long_every - 1)} long")


# ---------------------------------------------------------------------------
# Checkpoint stripping
# ---------------------------------------------------------------------------

def _load(path):
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def strip_checkpoint(src, dst):
    """Drop the optimizer state, keep everything fairseq reads on load.

    fairseq 0.12 writes {args (None), cfg (plain dict whose 'model' entry is
    an argparse.Namespace for the legacy `transformer` arch), model,
    criterion, optimizer_history, task_state, extra_state,
    last_optimizer_state}. Released models ship without the Adam moments in
    last_optimizer_state (2/3 of the file); optimizer_history and
    extra_state are a few hundred bytes and are kept (minus the timing
    entries), as fairseq's checkpoint upgrade path expects
    optimizer_history to exist. cfg is kept
    verbatim (the training commands use relative paths, so no temp-dir path
    leaks into it)."""
    import torch

    state = _load(src)
    before = os.path.getsize(src)
    dropped = [k for k in ("last_optimizer_state",) if k in state]
    for k in dropped:
        del state[k]
    # wall-clock bookkeeping (meters, cumulative training time) differs from
    # run to run although the weights do not; fairseq treats both as
    # optional on load. Dropping them makes model.pt byte-reproducible.
    extra = state.get("extra_state") or {}
    for k in ("metrics", "previous_training_time"):
        if k in extra:
            del extra[k]
            dropped.append(f"extra_state.{k}")
    torch.save(state, dst)
    log(f"dropped {', '.join(dropped) or 'nothing'}: {before / 1e6:.2f} MB -> "
        f"{os.path.getsize(dst) / 1e6:.2f} MB")


def describe(path):
    state = _load(path)
    model = state["model"]
    # tied weights (shared embeddings / output projection) share storage
    # after torch.load; count each storage once, and skip fairseq's
    # bookkeeping buffers (`*.version`, sinusoidal `_float_tensor`)
    seen, n = set(), 0
    for k, v in model.items():
        if k.endswith((".version", "._float_tensor")):
            continue
        ptr = v.untyped_storage().data_ptr()
        if ptr in seen:
            continue
        seen.add(ptr)
        n += v.numel()
    cfg = state.get("cfg")
    print(f"checkpoint: {path}")
    print(f"  size: {os.path.getsize(path) / 1e6:.2f} MB, state_dict entries: {len(model)}, "
          f"parameters: {n:,} (tied weights counted once)")
    print(f"  top-level keys: {list(state.keys())}")
    if cfg is not None:
        print(f"  type(cfg): {type(cfg).__name__}, type(cfg['model']): {type(cfg['model']).__name__}")
        m = cfg["model"]
        keys = ("arch", "encoder_layers", "decoder_layers", "encoder_embed_dim",
                "encoder_ffn_embed_dim", "encoder_attention_heads",
                "encoder_normalize_before", "decoder_normalize_before",
                "encoder_learned_pos", "layernorm_embedding", "activation_fn",
                "share_all_embeddings", "share_decoder_input_output_embed")
        get = (lambda k: getattr(m, k, None)) if not isinstance(m, dict) else m.get
        print("  " + ", ".join(f"{k}={get(k)}" for k in keys))
    return n


# ---------------------------------------------------------------------------
# Evaluation through the fairseq hub interface
# ---------------------------------------------------------------------------

def evaluate(model_dir, corpus, beam=5, hyp_out=None, batch=64, src_lang="en", tgt_lang="de", hub_langs=True):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import sacrebleu
    import torch
    from fairseq.models.transformer import TransformerModel

    torch.manual_seed(1)
    model_dir = os.path.abspath(model_dir)
    # without hub_langs the languages are the ones the checkpoint records
    langs = {"source_lang": src_lang, "target_lang": tgt_lang} if hub_langs else {}
    hub = TransformerModel.from_pretrained(
        model_dir,
        checkpoint_file="model.pt",
        bpe="fastbpe",
        bpe_codes=os.path.join(model_dir, "bpecodes"),
        tokenizer="moses",
        **langs,
    )
    hub.eval()
    src = [l.rstrip("\n") for l in open(os.path.join(corpus, f"test.{src_lang}"), encoding="utf-8")]
    ref = [l.rstrip("\n") for l in open(os.path.join(corpus, f"test.{tgt_lang}"), encoding="utf-8")]
    hyp = []
    with torch.no_grad():
        for i in range(0, len(src), batch):
            hyp.extend(hub.translate(src[i:i + batch], beam=beam))
    metric = sacrebleu.metrics.BLEU()
    bleu = metric.corpus_score(hyp, [ref])
    exact = sum(h == r for h, r in zip(hyp, ref))
    if hyp_out:
        with open(hyp_out, "w", encoding="utf-8") as f:
            f.write("\n".join(hyp) + "\n")
    for s, h, r in list(zip(src, hyp, ref))[:5]:
        print(f"  EN  {s}\n  HYP {h}\n  REF {r}")
    print(f"BLEU = {bleu.score:.2f}")
    print(f"detail: {bleu.format(width=1, score_only=False)}")
    print(f"signature: {metric.get_signature()}")
    print(f"exact matches: {exact}/{len(ref)}")
    return bleu.score


# ---------------------------------------------------------------------------
# Multilingual (SentencePiece) and BART (GPT-2 BPE) fixtures
# ---------------------------------------------------------------------------

SPLITS = ("train", "valid", "test")


def spm_data(corpus, out, vocab=1000, src_lang="en", tgt_lang="de"):
    """SentencePiece BPE trained on train.{src,tgt}, then every split encoded as
    fairseq's SentencepieceBPE.encode does (pieces joined by spaces)."""
    import sentencepiece as spm

    from sentencepiece import sentencepiece_model_pb2

    os.makedirs(out, exist_ok=True)
    inputs = ",".join(os.path.join(corpus, f"train.{lang}") for lang in (src_lang, tgt_lang))
    path = os.path.join(out, "spm.model")
    spm.SentencePieceTrainer.train(input=inputs, model_prefix=path[: -len(".model")], vocab_size=vocab,
                                   model_type="bpe", character_coverage=1.0, num_threads=1,
                                   input_sentence_size=0, shuffle_input_sentence=False, minloglevel=2)
    # the model records its build paths (a temp dir) in trainer_spec, which encoding never reads:
    # dropped, so spm.model is byte-reproducible
    proto = sentencepiece_model_pb2.ModelProto()
    with open(path, "rb") as f:
        proto.ParseFromString(f.read())
    proto.trainer_spec.model_prefix = "spm"
    del proto.trainer_spec.input[:]
    with open(path, "wb") as f:
        f.write(proto.SerializeToString())
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "spm.model"))
    for lang in (src_lang, tgt_lang):
        for split in SPLITS:
            with open(os.path.join(corpus, f"{split}.{lang}"), encoding="utf-8") as f:
                lines = [" ".join(sp.encode(l.rstrip("\n"), out_type=str)) for l in f]
            with open(os.path.join(out, f"{split}.bpe.{lang}"), "w", encoding="utf-8") as g:
                g.write("\n".join(lines) + "\n")
    log(f"spm.model: {sp.get_piece_size()} pieces (bpe, trained on train.{src_lang} + train.{tgt_lang})")


def gpt2_data(corpus, out, bpe_dir, src_lang="en", tgt_lang="de"):
    """Every split as GPT-2 ids with a leading ``<s>`` (fairseq's own gpt2 encoder)."""
    from fairseq.data.encoders.gpt2_bpe_utils import get_encoder

    os.makedirs(out, exist_ok=True)
    bpe = get_encoder(os.path.join(bpe_dir, "encoder.json"), os.path.join(bpe_dir, "vocab.bpe"))
    for lang in (src_lang, tgt_lang):
        for split in SPLITS:
            with open(os.path.join(corpus, f"{split}.{lang}"), encoding="utf-8") as f:
                lines = ["<s> " + " ".join(map(str, bpe.encode(l.rstrip("\n")))) for l in f]
            with open(os.path.join(out, f"{split}.bpe.{lang}"), "w", encoding="utf-8") as g:
                g.write("\n".join(lines) + "\n")
    log(f"GPT-2 BPE ids written for {SPLITS} x ({src_lang}, {tgt_lang})")


def _report(name, src, hyp, ref, n_tokens, cap):
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU().corpus_score(hyp, [ref])
    capped = sum(n >= cap for n in n_tokens)
    repeats = sum(bool(re.search(r"\b(\w+)( \1\b){2,}", h)) for h in hyp)
    for s, h, r in list(zip(src, hyp, ref))[:3]:
        print(f"  SRC {s}\n  HYP {h}\n  REF {r}")
    print(f"{name}: BLEU = {bleu.score:.2f}, exact matches: {sum(h == r for h, r in zip(hyp, ref))}/{len(ref)}, "
          f"stopped before the length cap: {len(hyp) - capped}/{len(hyp)}, a word 3x in a row: {repeats}")


def _read(path):
    with open(path, encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def evaluate_multilingual(model_dir, corpus, pairs, beam=5, batch=64):
    """The task's own inference (what fairseq-generate runs), as tests/helpers/fairseq_ref.py does."""
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    from argparse import Namespace

    import torch
    from fairseq import checkpoint_utils
    from fairseq.data import encoders

    torch.manual_seed(1)
    d = os.path.abspath(model_dir)
    bpe = encoders.build_bpe(Namespace(bpe="sentencepiece", sentencepiece_model=os.path.join(d, "spm.model"),
                                       sentencepiece_enable_sampling=False, sentencepiece_alpha=None))
    for pair in pairs.split(","):
        s, t = pair.split("-")
        models, _cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [os.path.join(d, "model.pt")], arg_overrides={
                "data": d, "source_lang": s, "target_lang": t, "lang_dict": os.path.join(d, "lang_dict.txt"),
                "fixed_dictionary": os.path.join(d, "model_dict.txt")})
        models = [m.eval() for m in models]
        gen = task.build_generator(models, Namespace(beam=beam))
        src, ref = _read(os.path.join(corpus, f"test.{s}")), _read(os.path.join(corpus, f"test.{t}"))
        hyp, n_tokens = [""] * len(src), [0] * len(src)
        with torch.no_grad():
            for i in range(0, len(src), batch):
                toks = [task.source_dictionary.encode_line(bpe.encode(l), add_if_not_exist=False).long()
                        for l in src[i:i + batch]]
                ds = task.build_dataset_for_inference(toks, [x.numel() for x in toks])
                sample = ds.collater([ds[j] for j in range(len(toks))])
                out = task.inference_step(gen, models, sample)
                for j, sid in enumerate(sample["id"].tolist()):
                    h = out[j][0]["tokens"]
                    n_tokens[i + sid] = h.numel()
                    text = task.target_dictionary.string(
                        h.int(), extra_symbols_to_ignore=gen.symbols_to_strip_from_output)
                    hyp[i + sid] = bpe.decode(text)
        cap = int(gen.max_len_b) if hasattr(gen, "max_len_b") else 200
        _report(f"{s}-{t} beam {beam}", src, hyp, ref, n_tokens, cap)


def evaluate_bart(model_dir, corpus, beam=5, src_lang="en", tgt_lang="de", batch=64):
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    import torch
    from fairseq.models.bart import BARTModel

    torch.manual_seed(1)
    d = os.path.abspath(model_dir)
    cwd = os.getcwd()
    os.chdir(d)  # the checkpoint records its BPE files relative to where it was trained
    try:
        hub = BARTModel.from_pretrained(d, checkpoint_file="model.pt", data_name_or_path=d).eval()
    finally:
        os.chdir(cwd)
    src, ref = _read(os.path.join(corpus, f"test.{src_lang}")), _read(os.path.join(corpus, f"test.{tgt_lang}"))
    hyp, n_tokens = [], []
    with torch.no_grad():
        for i in range(0, len(src), batch):
            out = hub.generate([hub.encode(l) for l in src[i:i + batch]], beam=beam)
            n_tokens += [o[0]["tokens"].numel() for o in out]
            hyp += [hub.decode(o[0]["tokens"]) for o in out]
    _report(f"{src_lang}-{tgt_lang} beam {beam}", src, hyp, ref, n_tokens, 200)


def main(argv=None):
    ap = argparse.ArgumentParser(description="fixture helpers")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("build-fastbpe")
    p.add_argument("workdir")
    p = sub.add_parser("prepare-data")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--fast", required=False)
    p.add_argument("--codes")
    p.add_argument("--n-codes", type=int, default=3000)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--tgt-moses")
    p = sub.add_parser("piglatin")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--long-every", type=int, default=20)
    p = sub.add_parser("strip")
    p.add_argument("src")
    p.add_argument("dst")
    p = sub.add_parser("evaluate")
    p.add_argument("model_dir")
    p.add_argument("corpus")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--out")
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p.add_argument("--no-hub-langs", action="store_true")
    p = sub.add_parser("describe")
    p.add_argument("ckpt")
    p = sub.add_parser("spm-data")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--vocab", type=int, default=1000)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p = sub.add_parser("gpt2-data")
    p.add_argument("corpus")
    p.add_argument("out")
    p.add_argument("--bpe-dir", required=True)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    p = sub.add_parser("evaluate-multilingual")
    p.add_argument("model_dir")
    p.add_argument("corpus")
    p.add_argument("--pairs", default="en-de,de-en")
    p.add_argument("--beam", type=int, default=5)
    p = sub.add_parser("evaluate-bart")
    p.add_argument("model_dir")
    p.add_argument("corpus")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--src", default="en")
    p.add_argument("--tgt", default="de")
    a = ap.parse_args(argv)
    if a.cmd == "build-fastbpe":
        print(build_fastbpe(a.workdir))
    elif a.cmd == "prepare-data":
        if not a.codes and not a.fast:
            ap.error("--fast is required unless --codes is given")
        prepare_data(a.corpus, a.out, a.fast, a.codes, a.n_codes, a.src, a.tgt, a.tgt_moses)
    elif a.cmd == "piglatin":
        write_piglatin_corpus(a.corpus, a.out, a.long_every)
    elif a.cmd == "strip":
        strip_checkpoint(a.src, a.dst)
    elif a.cmd == "evaluate":
        evaluate(a.model_dir, a.corpus, a.beam, a.out, src_lang=a.src, tgt_lang=a.tgt, hub_langs=not a.no_hub_langs)
    elif a.cmd == "describe":
        describe(a.ckpt)
    elif a.cmd == "spm-data":
        spm_data(a.corpus, a.out, a.vocab, a.src, a.tgt)
    elif a.cmd == "gpt2-data":
        gpt2_data(a.corpus, a.out, a.bpe_dir, a.src, a.tgt)
    elif a.cmd == "evaluate-multilingual":
        evaluate_multilingual(a.model_dir, a.corpus, a.pairs, a.beam)
    elif a.cmd == "evaluate-bart":
        evaluate_bart(a.model_dir, a.corpus, a.beam, a.src, a.tgt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
