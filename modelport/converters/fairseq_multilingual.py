"""fairseq's ``translation_multi_simple_epoch`` task (M2M100, NLLB-200): what the
``fairseq`` converter reads besides the weights.

The task (``MultilingualDatasetManager.prepare`` in fairseq 0.12) builds its
dictionary as: the dictionary file (``--fixed-dictionary``, else
``dict.<lang>.txt``), then one language token per language of the language
list (``--lang-dict`` file, else ``--langs``, else the sorted languages of
``--lang-pairs``) appended after the file's ``madeupword`` padding, then
``<mask>`` for ``--lang-tok-style mbart``. So the embedding has more rows than
``dict.txt`` + 4 specials; its size is read from the checkpoint, never
assumed: it must hold at least the task's symbols (rows past them, as some
releases carry, name no symbol). ``cfg.task`` is kept as an
``argparse.Namespace`` whose ``lang_dict`` / ``fixed_dictionary`` paths are
relative to where training ran: they are looked up by file name beside the
checkpoint.

Language tokens (``--encoder-langtok src|tgt``, ``--decoder-langtok``, or the
``langtoks`` the task recorded) are placed by
:class:`~modelport.tokenizers.fairseq_spm.FairseqSpmTokenizer` and the
search's prefix tokens. NLLB-MoE (``--moe-expert-count``, ``moe_layer``
weights) is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelport.converters.base import TokenizerAssets
from modelport.errors import InvalidInputError
from modelport.tokenizers.fairseq_spm import LANG_TOK_STYLES, FairseqSpmTokenizer, augment_dictionary
from modelport.tokenizers.vocab import FairseqDictionary

TASK = "translation_multi_simple_epoch"
SPM_NAMES = ("sentencepiece.bpe.model", "spm.model", "sentence.bpe.model")


def task_name(task: dict[str, Any]) -> str | None:
    """The fairseq task a checkpoint was trained with (``--task`` / ``cfg.task._name``)."""
    name = task.get("_name") or task.get("task")
    return name if isinstance(name, str) else None


def is_multilingual(task: dict[str, Any]) -> bool:
    return task_name(task) == TASK


def moe_problems(opts: dict[str, Any], state: dict[str, Any]) -> list[str]:
    """NLLB-MoE (and any mixture-of-experts fairseq model) is out of scope."""
    experts = opts.get("moe_expert_count")
    if (isinstance(experts, int) and experts > 0) or any(".moe_layer." in k or ".experts." in k for k in state):
        return [f"NLLB-MoE / mixture-of-experts layers (--moe-expert-count {experts}) are not supported "
                "(supported: dense models: NLLB-200 dense and distilled, M2M100)"]
    return []


def _langtok_specs(task: dict[str, Any]) -> tuple[Any, Any]:
    """(encoder spec, decoder spec) as ``prepare`` computes ``langtoks["main"]``."""
    langtoks = task.get("langtoks")
    if isinstance(langtoks, dict) and isinstance(langtoks.get("main"), (list, tuple)) and len(langtoks["main"]) == 2:
        enc, dec = langtoks["main"]
        return enc or None, dec or None
    return task.get("encoder_langtok") or None, ("tgt" if task.get("decoder_langtok") else None)


def task_problems(task: dict[str, Any]) -> list[str]:
    """Every option of the task modelport does not reproduce, in fairseq's names."""
    problems = []
    if task.get("lang_tok_replacing_bos_eos"):
        problems.append("--lang-tok-replacing-bos-eos is not supported (supported: off)")
    specs = task.get("langtoks_specs") or ["main"]
    specs = specs.split(",") if isinstance(specs, str) else list(specs)
    if specs != ["main"]:
        problems.append(f"--langtoks-specs {','.join(map(str, specs))} is not supported (supported: main)")
    style = task.get("lang_tok_style") or "multilingual"
    if style not in LANG_TOK_STYLES:
        problems.append(f"--lang-tok-style {style} is not supported (supported: {', '.join(LANG_TOK_STYLES)})")
    enc, dec = _langtok_specs(task)
    if enc not in (None, "src", "tgt"):
        problems.append(f"--encoder-langtok {enc} is not supported (supported: src, tgt)")
    if dec not in (None, "tgt"):
        problems.append(f"--decoder-langtok spec {dec} is not supported (supported: tgt)")
    return problems


def _beside(directory: Path, recorded: Any, what: str, option: str) -> Path:
    """A file the task names by a path relative to where training ran: the
    file of that name beside the checkpoint."""
    name = Path(str(recorded)).name
    path = directory / name
    if not path.is_file():
        raise InvalidInputError(f"{what} `{name}` (the checkpoint's {option} {recorded}) does not exist in "
                                f"`{directory}`; put it beside the checkpoint")
    return path


def _split_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [x for x in value.split(",") if x]
    return [str(x) for x in value or []]


def languages(directory: Path, task: dict[str, Any]) -> tuple[list[str], Path | None]:
    """``MultilingualDatasetManager.load_langs``: the language list (and the
    --lang-dict file it came from)."""
    if task.get("lang_dict"):
        path = _beside(directory, task["lang_dict"], "language list", "--lang-dict")
        langs = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return langs, path
    if task.get("langs"):
        return _split_list(task["langs"]), None
    pairs = _split_list(task.get("lang_pairs"))
    if not pairs:
        raise InvalidInputError(f"`{directory}`: the checkpoint names no languages (--lang-dict, --langs or "
                                "--lang-pairs)")
    return sorted({lang for pair in pairs for lang in pair.split("-")}), None


def dictionary_path(directory: Path, task: dict[str, Any], langs: list[str]) -> Path:
    """The dictionary file the task loads: --fixed-dictionary, --source-dict,
    else dict.txt or the first language's dict.<lang>.txt."""
    for option in ("fixed_dictionary", "source_dict"):
        if task.get(option):
            return _beside(directory, task[option], "dictionary", "--" + option.replace("_", "-"))
    if (directory / "dict.txt").is_file():
        return directory / "dict.txt"
    for lang in langs:
        if (directory / f"dict.{lang}.txt").is_file():
            return directory / f"dict.{lang}.txt"
    raise InvalidInputError(f"`{directory}` holds no dictionary (dict.txt or dict.<lang>.txt) for the "
                            "checkpoint; put the one it was trained with beside it")


def spm_path(directory: Path, task: dict[str, Any]) -> Path:
    """The SentencePiece model: the one the checkpoint records (by file name),
    a usual name, or the only ``*.model`` beside the checkpoint."""
    recorded = task.get("bpe.sentencepiece_model") or task.get("sentencepiece_model")
    if isinstance(recorded, str) and (directory / Path(recorded).name).is_file():
        return directory / Path(recorded).name
    for name in SPM_NAMES:
        if (directory / name).is_file():
            return directory / name
    found = sorted(directory.glob("*.model"))
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise InvalidInputError(f"`{directory}` must hold the model's SentencePiece model (one *.model file; "
                            f"found: {names})")


@dataclass
class MultilingualTask:
    """What the task adds to the checkpoint's weights."""

    languages: list[str]
    lang_dict: Path | None
    dict_path: Path
    dictionary: FairseqDictionary  # augmented as the task augments it
    lang_tok_style: str
    add_mask: bool
    encoder_langtok: str | None
    decoder_langtok: bool

    @classmethod
    def read(cls, directory: Path, task: dict[str, Any]) -> MultilingualTask:
        langs, lang_dict = languages(directory, task)
        path = dictionary_path(directory, task, langs)
        style = task.get("lang_tok_style") or "multilingual"
        # augment_dictionary adds <mask> for the mbart style or denoising extra data
        add_mask = style == "mbart" or "mono_dae" in json.dumps(task.get("extra_data"), default=str)
        d = FairseqDictionary.load(path)
        augment_dictionary(d, langs, style, add_mask)
        enc, dec = _langtok_specs(task)
        return cls(languages=langs, lang_dict=lang_dict, dict_path=path, dictionary=d, lang_tok_style=style,
                   add_mask=add_mask, encoder_langtok=enc, decoder_langtok=dec is not None)

    def embedding_problems(self, rows: dict[str, int]) -> list[str]:
        """The embeddings must hold every symbol of the task's dictionary."""
        n = len(self.dictionary)
        return [f"the checkpoint's {side} embedding has {r} rows, fewer than the {n} symbols the task builds "
                f"({self.dict_path.name}: 4 special + {n - 4 - len(self.languages) - self.add_mask} from the file, "
                f"{len(self.languages)} language tokens{' and <mask>' if self.add_mask else ''}); use the "
                "dictionary and language list the model was trained with"
                for side, r in rows.items() if r < n]

    def tokenizer_assets(self, spm: Path, rows: int) -> TokenizerAssets:
        files = {"sentencepiece.bpe.model": spm, "dict.txt": self.dict_path}
        if self.lang_dict is not None:
            files["lang_dict.txt"] = self.lang_dict
        return TokenizerAssets(files=files, config={
            "type": FairseqSpmTokenizer.kind,
            "spm": "sentencepiece.bpe.model",
            "dict": "dict.txt",
            "languages": self.languages,
            "lang_tok_style": self.lang_tok_style,
            "add_mask": self.add_mask,
            "encoder_langtok": self.encoder_langtok,
            "decoder_langtok": self.decoder_langtok,
            "dictionary_size": len(self.dictionary),
            "model_vocab_size": rows,
            "append_eos": True,
        })


__all__ = ["TASK", "MultilingualTask", "is_multilingual", "moe_problems", "spm_path", "task_name", "task_problems"]
