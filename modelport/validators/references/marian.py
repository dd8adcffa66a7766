"""Marian itself (``pymarian``, Marian 1.12 CPU) as the reference for Marian ports.

The original model directory (npz/bin + vocabularies + ``decoder.yml``) is
decoded by ``pymarian decode`` and scored by ``pymarian score``, each run as a
subprocess of the ``pymarian`` command that ships with the wheel (its
``Translator`` class returns only the printed strings, the same ones, and
keeps Marian's logging and threads in this process).

Input as Marian reads it: with SentencePiece vocabularies (``*.spm``) Marian
encodes raw text itself; with YAML/JSON vocabularies (the OPUS-MT layout)
Marian expects text already split into pieces, which OPUS-MT's pipeline does
with the ``source.spm`` next to the model, so this adapter does the same.
Output is always asked for as pieces (``--no-spm-decode``) and detokenized
here as Marian or OPUS-MT's postprocessing would (see :meth:`detokenize`).

What Marian prints, and so the precision of every number read back
(``src/translator/output_printer.{h,cpp}``, ``src/rescorer/score_collector.cpp``):

* ``WordScores=``: fixed, 5 decimals (half a unit: 5e-6);
* n-best ``F0=`` (path score) and the final score: the stream's default
  precision, 6 significant digits;
* ``pymarian score``: the sentence score fixed with 6 decimals, word scores
  as above.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelport.errors import InvalidInputError
from modelport.generation.alignment import OFF
from modelport.validators.references import require

# half a unit in the last printed digit
WORD_SCORE_PRECISION = 5e-6
SIGNIFICANT_DIGITS = 6
_TEXT_VOCAB = (".yml", ".yaml", ".json")
_LANGUAGE_CODE = re.compile(r"(>>[^<>\s]+<<)\s*")


def printed_tolerance(value: float) -> float:
    """Half a unit of the 6th significant digit of ``value`` as Marian prints it
    (``std::ostream``'s default precision)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(value))) - SIGNIFICANT_DIGITS + 1)


@dataclass(frozen=True)
class MarianHypothesis:
    """One n-best entry as ``pymarian decode --n-best --word-scores`` prints it.

    ``pieces``: target pieces, ``</s>`` not included; ``word_scores``: one per
    piece, plus one for ``</s>`` when the hypothesis ended with it;
    ``path_score``: ``F0`` (for an ensemble, the weighted sum of the members'
    ``F<i>``); ``score``: the final (normalised) score; ``alignment``: the
    alignment as printed with ``--alignment`` (None without)."""

    pieces: tuple[str, ...]
    text: str
    word_scores: tuple[float, ...]
    path_score: float
    score: float
    alignment: str | None = None


def pymarian_command() -> list[str]:
    """The ``pymarian`` CLI of the running interpreter's environment."""
    exe = Path(sys.executable).with_name("pymarian")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("pymarian")
    if found:
        return [found]
    return [sys.executable, "-m", "pymarian"]


def _flag(name: str, value: Any) -> list[str]:
    """One Marian option: booleans as bare flags (or nothing), lists spread."""
    opt = "--" + name.replace("_", "-")
    if value is None or value is False:
        return []
    if value is True:
        return [opt]
    if isinstance(value, (list, tuple)):
        return [opt, *(str(v) for v in value)]
    return [opt, str(value)]


class MarianReference:
    """One original Marian model directory, driven through pymarian.

    ``threads``: Marian's ``--cpu-threads`` (its decoder runs one sentence
    batch per thread; results do not depend on it)."""

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int = 1) -> None:
        require("pymarian", "validating against Marian")
        directory = Path(model_dir)
        config_path = directory / "decoder.yml"
        if not config_path.is_file():
            raise InvalidInputError(f"reference `{model_dir}` is not a Marian model directory (no decoder.yml); "
                                    "validate Marian ports against the directory they were converted from")
        try:
            config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise InvalidInputError(f"{config_path} is not YAML: {str(err).splitlines()[0]}") from None
        if not isinstance(config, dict) or not config.get("models") or not config.get("vocabs"):
            raise InvalidInputError(f"{config_path} must name `models` and `vocabs`")
        self.directory = directory
        self.config: dict[str, Any] = config
        self.threads = threads
        self.models = [self._path(m) for m in config["models"]]
        self.vocabs = [self._path(v) for v in config["vocabs"]]
        # YAML/JSON vocabularies: Marian reads pieces, OPUS-MT splits them with these
        self.pre_encoded = self.vocabs[0].suffix in _TEXT_VOCAB
        self._source_spm = self._target_spm = None
        if self.pre_encoded:
            import sentencepiece as spm

            src, trg = directory / "source.spm", directory / "target.spm"
            if not (src.is_file() and trg.is_file()):
                raise InvalidInputError(f"reference `{model_dir}` has YAML vocabularies but no source.spm/"
                                        "target.spm to split text into the pieces Marian reads")
            self._source_spm = spm.SentencePieceProcessor(model_file=str(src))
            self._target_spm = spm.SentencePieceProcessor(model_file=str(trg))
        else:
            import sentencepiece as spm

            self._target_spm = spm.SentencePieceProcessor(model_file=str(self.vocabs[-1]))

    def _path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() or not self.config.get("relative-paths", False) else self.directory / p

    # -- text as Marian reads and writes it ---------------------------------

    def source_text(self, lines: Sequence[str]) -> list[str]:
        """The lines as fed to Marian: pieces joined by spaces for YAML
        vocabularies (OPUS-MT's preprocessing), raw text otherwise."""
        if not self.pre_encoded:
            return list(lines)
        out = []
        for line in lines:  # a leading >>xxx<< (a target language) stays one piece, as in OPUS-MT's pipeline
            code = _LANGUAGE_CODE.match(line)
            rest = line[code.end():] if code else line
            out.append(" ".join(([code.group(1)] if code else []) + self._source_spm.encode(rest, out_type=str)))
        return out

    def target_pieces(self, lines: Sequence[str]) -> list[str]:
        """Reference translations as Marian's scorer reads them."""
        if not self.pre_encoded:
            return list(lines)
        return [" ".join(self._target_spm.encode(line, out_type=str)) for line in lines]

    def detokenize(self, pieces: Sequence[str]) -> str:
        """Target pieces to text: Marian's own SentencePiece decoding for
        ``.spm`` vocabularies; for YAML ones OPUS-MT's ``postprocess.sh``
        (``sed 's/ //g;s/▁/ /g'`` and trimmed), which also holds for pieces
        the target model does not know (a joint vocabulary's)."""
        if not self.pre_encoded:
            return self._target_spm.decode_pieces(list(pieces))
        return "".join(pieces).replace("\u2581", " ").strip()

    # -- running pymarian ----------------------------------------------------

    @property
    def shortlist(self) -> list[str] | None:
        """decoder.yml's ``shortlist`` as Marian reads it (FILE resolved, then its
        values), or None: what ``pymarian decode -c decoder.yml`` applies."""
        value = self.config.get("shortlist")
        if not value:
            return None
        values = [str(v) for v in (value if isinstance(value, list) else [value])]
        return [str(self._path(values[0])), *values[1:]]

    def _config_without(self, keys: Sequence[str]) -> str | None:
        """decoder.yml without ``keys`` (YAML text, its paths made absolute), or
        None when it has none of them: Marian has no flag that turns off a
        configured shortlist or alignment (``--shortlist`` needs a file)."""
        if not any(k in self.config for k in keys):
            return None
        config = {k: v for k, v in self.config.items() if k not in keys}
        config.update({"relative-paths": False, "models": [str(m) for m in self.models],
                       "vocabs": [str(v) for v in self.vocabs]})
        if "shortlist" in config:  # kept: its file, as the original reads it
            config["shortlist"] = self.shortlist
        return yaml.safe_dump(config, allow_unicode=True, sort_keys=False)

    def _run(self, args: list[str], inputs: dict[str, list[str]], files: dict[str, str] | None = None) -> list[str]:
        """Run ``pymarian ARGS``: ``@name`` in ``args`` is the path of a temporary
        file holding ``inputs[name]`` (one line each) or ``files[name]`` (text as is)."""
        with tempfile.TemporaryDirectory(prefix="modelport-marian-") as tmp:
            argv = list(args)
            texts = {name: "".join(line.replace("\n", " ") + "\n" for line in lines) for name, lines in inputs.items()}
            for name, text in {**texts, **(files or {})}.items():
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                argv = [str(path) if a == f"@{name}" else a for a in argv]
            out = Path(tmp) / "out.txt"
            cmd = [*pymarian_command(), *argv, "-o", str(out), "--cpu-threads", str(self.threads), "--quiet"]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:  # Marian's own words (its first "Error:" line), not its call stack
                said = [line.split("Error: ", 1)[1] for line in (proc.stderr or proc.stdout).splitlines()
                        if "Error: " in line]
                tail = said[:1] or (proc.stderr or proc.stdout).strip().splitlines()[-1:]
                raise InvalidInputError(f"the reference, pymarian {args[0]}, failed (exit {proc.returncode}) on "
                                        f"`{self.directory}`: {' '.join(tail)[:300] or 'no message'}")
            return out.read_text(encoding="utf-8").splitlines()

    def decode(self, lines: Sequence[str], *, beam_size: int | None = None, normalize: float | None = None,
               word_penalty: float | None = None, max_length_factor: float | None = None,
               max_length: int | None = None, max_length_crop: bool | None = None, allow_unk: bool | None = None,
               mini_batch: int | None = None, maxi_batch: int | None = None, maxi_batch_sort: str | None = None,
               weights: Sequence[float] | None = None,
               shortlist: Sequence[str | int | float] | None = None,
               alignment: str | float | None = None) -> list[list[MarianHypothesis]]:
        """``pymarian decode -c decoder.yml --n-best --word-scores``: per line,
        Marian's n-best list (``beam_size`` entries, best first). Options left
        None keep decoder.yml's value (or Marian's default); ``shortlist`` is
        ``--shortlist`` (a file, then first, best, threshold); ``alignment`` is
        ``--alignment`` (hard, soft or a threshold: each entry's printed alignment);
        either as ``"none"`` turns off decoder.yml's (Marian then reads a copy without it)."""
        opts = {"beam_size": beam_size, "normalize": normalize, "word_penalty": word_penalty,
                "max_length_factor": max_length_factor, "max_length": max_length, "max_length_crop": max_length_crop,
                "allow_unk": allow_unk, "mini_batch": mini_batch, "maxi_batch": maxi_batch,
                "maxi_batch_sort": maxi_batch_sort, "weights": list(weights) if weights is not None else None,
                "shortlist": None if shortlist is None else [shortlist] if isinstance(shortlist, str)
                else list(shortlist), "alignment": alignment}
        off = [k for k in ("shortlist", "alignment") if opts[k] in (OFF, [OFF])]
        config = self._config_without(off)
        args = ["decode", "-c", str(self.directory / "decoder.yml") if config is None else "@decoder.yml",
                "-i", "@input.txt", "--n-best", "--word-scores", "--no-spm-decode"]
        for k, v in opts.items():
            args += _flag(k, None if k in off else v)
        out = self._run(args, {"input.txt": self.source_text(lines)},
                        {"decoder.yml": config} if config is not None else None)
        result: list[list[MarianHypothesis]] = [[] for _ in lines]
        for row in out:
            idx, hyp = self._parse_nbest(row, weights if weights is not None else self.config.get("weights"))
            result[idx].append(hyp)
        return result

    def _parse_nbest(self, row: str, weights: Sequence[float] | None = None) -> tuple[int, MarianHypothesis]:
        """``id ||| pieces [||| alignment] ||| WordScores= ... ||| F0= x ||| score``;
        an ensemble's path score is its members' ``F<i>`` times ``weights``."""
        fields = [f.strip() for f in row.split(" ||| ")]
        alignment = fields.pop(2) if len(fields) == 6 else None
        if len(fields) != 5 or not fields[2].startswith("WordScores="):
            raise RuntimeError(f"unexpected pymarian n-best line: {row[:200]!r}")
        pieces = tuple(fields[1].split())
        words = tuple(float(x) for x in fields[2].split()[1:])
        feats = fields[3].split()
        # "F0= -1.5" or, for ensembles, "F0= a F1= b": each member's own (unweighted) path score
        members = [float(v) for k, v in zip(feats[::2], feats[1::2]) if k.startswith("F")]
        path = sum(w * f for w, f in zip(weights or [1.0] * len(members), members))
        return int(fields[0]), MarianHypothesis(pieces, self.detokenize(pieces), words, path, float(fields[4]),
                                                alignment)

    def score(self, src_lines: Sequence[str], trg_lines: Sequence[str] | Sequence[Sequence[str]], *,
              mini_batch: int = 1, maxi_batch: int = 1) -> list[tuple[float, tuple[float, ...]]]:
        """``pymarian score --word-scores``: teacher-forced per-token
        log-probabilities (``</s>`` last) and their sum, per sentence pair.
        A target given as a sequence of pieces is scored as those pieces (a
        decoded hypothesis need not re-encode to the pieces it was made of)."""
        args = ["score", "-m", *map(str, self.models), "-v", *map(str, self.vocabs),
                "-t", "@src.txt", "@trg.txt", "--word-scores", "--mini-batch", str(mini_batch),
                "--maxi-batch", str(maxi_batch)]
        if all(isinstance(t, str) for t in trg_lines):
            trg = self.target_pieces(trg_lines)  # type: ignore[arg-type]
        elif self.pre_encoded:
            trg = [" ".join(t) for t in trg_lines]
        else:
            raise InvalidInputError("this model's vocabularies are SentencePiece models: Marian scores text, "
                                    "not pieces")
        out = self._run(args, {"src.txt": self.source_text(src_lines), "trg.txt": trg})
        scores = []
        for row in out:
            total, _, words = row.partition(" ||| WordScores=")
            scores.append((float(total), tuple(float(x) for x in words.split())))
        if len(scores) != len(src_lines):
            raise RuntimeError(f"pymarian score returned {len(scores)} lines for {len(src_lines)} inputs")
        return scores
