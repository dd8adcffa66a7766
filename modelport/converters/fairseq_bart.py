"""fairseq BART / mBART checkpoints (``bart_base``, ``bart_large``, ``mbart_large``,
``mbart_base``): what the ``fairseq`` converter reads besides the weights.

The weights are the ``transformer`` family's (learned positions offset by
``pad + 1 = 2``, ``layernorm_embedding``, GELU, shared embeddings; mBART:
pre-norm with final norms); the architecture defaults are in
:data:`~modelport.converters.fairseq.ARCHITECTURES`. What differs is the
text side, as ``BARTModel.from_pretrained(...)``'s ``BARTHubInterface`` runs it:

* the dictionary is ``dict.txt`` (``dict.<lang>.txt`` for a ``translation``
  fine-tune such as bart-large-cnn), plus what the task adds: ``<mask>`` for
  ``denoising``; ``[lang]`` tokens of ``--langs`` then ``<mask>`` for
  ``multilingual_denoising``. The embedding's rows are read from the
  checkpoint (a denoising checkpoint fine-tuned for translation keeps the
  ``<mask>`` row);
* the BPE is GPT-2's byte-level one (``encoder.json`` + ``vocab.bpe``, whose
  ids are words of ``dict.txt``) or SentencePiece (mBART's
  ``sentence.bpe.model``);
* ``BARTHubInterface.encode`` wraps the source as ``<s> ... </s>`` and
  ``generate`` forces ``<s>`` as the first target token (``prefix_tokens``;
  ``fairseq-interactive`` does neither and decodes differently).

``translation_from_pretrained_bart`` (mBART-25 fine-tunes) is run as
``fairseq-generate`` runs that task, not through the hub: the dictionary gets
``[lang]`` for each ``--langs`` then ``<mask>``; the source is ``ids + </s> +
[src]`` (its ``build_dataset_for_inference``); ``SequenceGenerator`` gets
``eos=[tgt]``, so the decoder starts from the target language token and stops
on it (``</s>`` is an ordinary token there), unlike mBART-50's
``translation_multi_simple_epoch`` (``[src]`` before the source, ``</s>`` to
start, ``[tgt]`` forced first).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.converters.base import TokenizerAssets
from modelport.converters.fairseq_multilingual import spm_path, task_name
from modelport.errors import InvalidInputError
from modelport.tokenizers.fairseq_spm import FairseqSpmTokenizer, augment_dictionary
from modelport.tokenizers.gpt2_bpe import Gpt2BpeTokenizer
from modelport.tokenizers.vocab import FairseqDictionary

BART_ARCHS = ("bart_base", "bart_large", "mbart_large", "mbart_base")
BART_TASKS = ("translation", "denoising", "multilingual_denoising", "translation_from_pretrained_bart")
FINETUNE = "translation_from_pretrained_bart"


def is_bart(opts: dict[str, Any]) -> bool:
    return (opts.get("arch") or opts.get("_name")) in BART_ARCHS


def bart_task_problems(task: dict[str, Any]) -> list[str]:
    name = task_name(task)
    if name not in BART_TASKS:
        return [f"--task {name} is not supported for BART models (supported: {', '.join(BART_TASKS)})"]
    if name == FINETUNE and not task.get("langs"):
        return ["--task translation_from_pretrained_bart without --langs is not supported (the language tokens "
                "cannot be placed)"]
    return []


def _bpe_name(directory: Path, task: dict[str, Any]) -> str:
    name = task.get("bpe._name") or task.get("bpe")
    if name in ("gpt2", "sentencepiece"):
        return str(name)
    if (directory / "encoder.json").is_file() and (directory / "vocab.bpe").is_file():
        return "gpt2"
    return "sentencepiece"


def _beside(directory: Path, recorded: Any, default: str) -> Path:
    name = Path(str(recorded)).name if isinstance(recorded, str) and recorded.strip() else default
    for candidate in (name, default):
        if (directory / candidate).is_file():
            return directory / candidate
    raise InvalidInputError(f"`{directory}` must hold the GPT-2 BPE file `{default}` beside the checkpoint (BART's "
                            f"gpt2 BPE: encoder.json and vocab.bpe)")


@dataclass
class BartTask:
    """BART's dictionary and tokenizer files, as its hub interface builds them."""

    directory: Path
    dict_path: Path
    dictionary: FairseqDictionary
    languages: list[str]
    add_mask: bool
    bpe: str
    task: dict[str, Any]

    @classmethod
    def read(cls, directory: Path, task: dict[str, Any], dict_path: Path) -> BartTask:
        name = task_name(task)
        langs: list[str] = []
        if (name == "multilingual_denoising" and task.get("add_lang_token")) or name == FINETUNE:
            raw = task.get("langs")
            langs = [x for x in raw.split(",") if x] if isinstance(raw, str) else [str(x) for x in raw or []]
        add_mask = name in ("denoising", "multilingual_denoising", FINETUNE)
        d = FairseqDictionary.load(dict_path)
        augment_dictionary(d, langs, "mbart", add_mask)
        return cls(directory=directory, dict_path=dict_path, dictionary=d, languages=langs, add_mask=add_mask,
                   bpe=_bpe_name(directory, task), task=task)

    def embedding_problems(self, rows: dict[str, int]) -> list[str]:
        n = len(self.dictionary)
        return [f"the checkpoint's {side} embedding has {r} rows, fewer than the {n} symbols the task builds "
                f"({self.dict_path.name}: 4 special + the file{' + <mask>' if self.add_mask else ''}); use the "
                "dictionary the model was trained with" for side, r in rows.items() if r < n]

    def tokenizer_assets(self, rows: int) -> TokenizerAssets:
        finetune = task_name(self.task) == FINETUNE  # fairseq-generate's task, not the hub: no <s>
        common = {"dict": "dict.txt", "add_mask": self.add_mask, "source_bos": not finetune,
                  "decoder_bos": not finetune,
                  "dictionary_size": len(self.dictionary), "model_vocab_size": rows, "append_eos": True}
        if self.bpe == "gpt2":
            enc = _beside(self.directory, self.task.get("bpe.gpt2_encoder_json"), "encoder.json")
            merges = _beside(self.directory, self.task.get("bpe.gpt2_vocab_bpe"), "vocab.bpe")
            return TokenizerAssets(
                files={"encoder.json": enc, "vocab.bpe": merges, "dict.txt": self.dict_path},
                config={"type": Gpt2BpeTokenizer.kind, "encoder_json": "encoder.json", "vocab_bpe": "vocab.bpe",
                        **common})
        # mBART: SentencePiece; pre-training's [lang] tokens are plain dictionary symbols (the hub
        # places none), a fine-tune's are placed as its task places them
        spm = spm_path(self.directory, self.task)
        langs = {"languages": self.languages, "extra_symbols": [], "langtok_placement": "mbart_finetune"} \
            if finetune else {"languages": [], "extra_symbols": [f"[{x}]" for x in self.languages]}
        return TokenizerAssets(
            files={"sentencepiece.bpe.model": spm, "dict.txt": self.dict_path},
            config={"type": FairseqSpmTokenizer.kind, "spm": "sentencepiece.bpe.model", "lang_tok_style": "mbart",
                    "encoder_langtok": None, "decoder_langtok": False, **langs, **common})


__all__ = ["BART_ARCHS", "BART_TASKS", "BartTask", "bart_task_problems", "is_bart"]
