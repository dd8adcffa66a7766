"""Converter registry and the one fixed conversion lifecycle.

load → check → build config → map weights → validate against the unified
model → save. A converter supplies the format-specific steps; this module
owns the order, the "every slot filled exactly once" check and the atomic
write, so no converter can skip them.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm.auto import tqdm

from modelport import __version__
from modelport.errors import (InvalidInputError, NonFiniteWeightsError, UnknownFormatError,
                              UnsupportedCheckpointError, WeightMappingError)
from modelport.model.config import CONFIG_FORMAT_VERSION, Seq2SeqConfig
from modelport.model.io import atomic_output_dir, save_weights, write_json
from modelport.model.transformer import Seq2SeqModel

_REGISTRY: dict[str, type[Converter]] = {}
_ENTRY_POINTS_LOADED = False


def register_converter(name: str) -> Callable[[type[Converter]], type[Converter]]:
    """Class decorator registering a converter under the foreign format's own name."""

    def wrap(cls: type[Converter]) -> type[Converter]:
        cls.format_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load_entry_points() -> None:
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    import modelport.converters.fairseq  # noqa: F401  (built-ins register on import)
    import modelport.converters.t5  # noqa: F401
    import modelport.converters.marian  # noqa: F401

    for ep in entry_points(group="modelport.converters"):
        if ep.name not in _REGISTRY:
            cls = ep.load()
            _REGISTRY.setdefault(ep.name, cls)


def converters() -> dict[str, type[Converter]]:
    """All registered converters by format name (built-ins and entry points)."""
    _load_entry_points()
    return dict(_REGISTRY)


def first_source_path(source: str) -> Path:
    """``source`` as a path, or its first checkpoint when it names an ensemble
    ``a.pt:b.pt`` (a path that exists with a colon in it is taken whole)."""
    return Path(source.split(":")[0]) if ":" in source and not Path(source).exists() else Path(source)


def get_converter(source: str, format: str | None = None) -> type[Converter]:
    """The converter for ``format``, or the one whose ``detect`` accepts ``source``."""
    known = converters()
    if not first_source_path(source).exists():
        raise InvalidInputError(f"`{source}` does not exist")
    if format is not None:
        if format not in known:
            raise UnknownFormatError(format, sorted(known), "given with --format")
        return known[format]
    for cls in known.values():
        if cls.detect(source):
            return cls
    raise UnknownFormatError(source, sorted(known),
                             "pass --format, or point at a directory or file the format's converter recognises")


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class TokenizerAssets:
    """Files copied into the ported folder's ``tokenizer/`` and their config."""

    files: dict[str, Path] = field(default_factory=dict)  # name in tokenizer/ -> source path
    config: dict[str, Any] = field(default_factory=dict)
    # source files the converter derived ``files`` from (when it writes them
    # itself into a temporary folder); checked like copied files
    inputs: list[Path] = field(default_factory=list)


@dataclass
class ConversionPlan:
    """Everything a converter produced, before anything is written."""

    format: str
    source: str
    config: Seq2SeqConfig
    members: list[list[tuple[str, torch.Tensor]]]
    dropped: dict[str, str]
    tokenizer: TokenizerAssets
    generation: dict[str, Any]
    source_files: list[Path]
    options: dict[str, Any]
    foreign_options: dict[str, Any]

    @property
    def parameters(self) -> int:
        seen: set[int] = set()
        total = 0
        for name, t in self.members[0]:
            key = t.untyped_storage().data_ptr() + t.storage_offset() * t.element_size()
            if key in seen:
                continue
            seen.add(key)
            total += t.numel()
        return total

    def summary(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "format": self.format,
            "source": self.source,
            "ensemble_size": len(self.members),
            "parameters_per_member": self.parameters,
            "architecture": {
                "encoder_layers": cfg.encoder_layers, "decoder_layers": cfg.decoder_layers,
                "d_model": cfg.d_model, "heads": [cfg.encoder_heads, cfg.decoder_heads],
                "ffn_dim": [cfg.encoder_ffn_dim, cfg.decoder_ffn_dim],
                "vocab": [cfg.source_vocab_size, cfg.target_vocab_size],
                "norm": f"{'pre' if cfg.pre_norm else 'post'}-{cfg.norm}",
                "positions": cfg.positions, "activation": cfg.activation,
                "shared_embeddings": cfg.shared_embeddings, "tied_output": cfg.tie_output_embeddings,
            },
            "dropped": self.dropped,
            "foreign_options": self.foreign_options,
            "tokenizer": self.tokenizer.config,
            "generation": self.generation,
        }


def expected_slots(config: Seq2SeqConfig) -> dict[str, tuple[int, ...]]:
    """Names and shapes of every tensor the unified model needs (built on meta)."""
    with torch.device("meta"):
        model = Seq2SeqModel(config)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


_LAYER_NAME = re.compile(r"^(encoder|decoder)\.layers\.(\d+)\.")


def check_layer_counts(source: str, config: Seq2SeqConfig, mapped: list[tuple[str, torch.Tensor]]) -> None:
    """The layer counts the options claim are the ones the weights hold.

    Checked from the names alone, before any module is built: options that
    claim 200,000 layers must fail at once, not after building them.
    """
    held: dict[str, set[int]] = {"encoder": set(), "decoder": set()}
    for name, _ in mapped:
        m = _LAYER_NAME.match(name)
        if m:
            held[m.group(1)].add(int(m.group(2)))
    problems = [f"the options say {claimed} {stack} layers, but the weights hold {len(held[stack])}"
                for stack, claimed in (("encoder", config.encoder_layers), ("decoder", config.decoder_layers))
                if claimed != len(held[stack]) or (held[stack] and max(held[stack]) >= claimed)]
    if problems:
        raise WeightMappingError(source, problems)


def check_dtypes(source: str, mapped: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """Floating-point weights as float32 (fp16/bf16/fp64 checkpoints are common and
    converted exactly or by rounding as torch does); any other dtype is refused."""
    problems = [f"`{name}` must be a floating-point tensor, but is {t.dtype}"
                for name, t in mapped if not t.is_floating_point()]  # check_slots ran first: all tensors
    if problems:
        raise WeightMappingError(source, problems)
    return [(name, t if t.dtype == torch.float32 else t.float()) for name, t in mapped]


# -inf in a logits bias masks a token on purpose (Marian ports give the added pad id -inf)
_MASKS = ("final_logits_bias",)


def nonfinite_tensors(mapped: list[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the tensors holding NaN or infinity (each tensor read once),
    -inf in a logits bias excepted."""
    bad = []
    for name, t in mapped:
        if bool(torch.isfinite(t).all()):
            continue
        if name.endswith(_MASKS) and not bool(torch.isnan(t).any()) and not bool(torch.isposinf(t).any()):
            continue
        bad.append(name)
    return bad


def check_slots(source: str, config: Seq2SeqConfig, mapped: list[tuple[str, torch.Tensor]]) -> None:
    """Every slot filled exactly once with the right shape, nothing extra; all
    problems reported together."""
    bad = [f"`{name}` is not a tensor (it is {type(t).__name__})" for name, t in mapped
           if not isinstance(t, torch.Tensor)]
    if bad:
        raise WeightMappingError(source, bad)
    check_layer_counts(source, config, mapped)
    slots = expected_slots(config)
    problems: list[str] = []
    filled: dict[str, int] = {}
    for name, t in mapped:
        filled[name] = filled.get(name, 0) + 1
        if name not in slots:
            problems.append(f"`{name}` is not a slot of the unified model")
        elif tuple(t.shape) != slots[name]:
            problems.append(f"`{name}` must have shape {list(slots[name])}, but has {list(t.shape)}")
    problems += [f"`{n}` is filled {c} times" for n, c in filled.items() if c > 1]
    problems += [f"slot `{n}` is not filled" for n in slots if n not in filled]
    if problems:
        raise WeightMappingError(source, problems)


# what an option's value must be, and how an error names that
_KINDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "int": ("an integer", lambda v: type(v) is int),
    "posint": ("a positive integer", lambda v: type(v) is int and v >= 1),
    "natural": ("an integer >= 0", lambda v: type(v) is int and v >= 0),
    "float": ("a finite number", lambda v: type(v) in (int, float) and math.isfinite(v)),
    "posfloat": ("a number > 0", lambda v: type(v) in (int, float) and math.isfinite(v) and v > 0),
    "bool": ("true or false", lambda v: type(v) is bool or v in (0, 1)),
    "str": ("a string", lambda v: isinstance(v, str)),
    "intlist": ("a list of integers", lambda v: isinstance(v, (list, tuple)) and all(type(x) is int for x in v)),
}


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr`` cut to ``limit`` characters, computed without expanding shared
    structures (a YAML alias bomb's ``repr`` would take gigabytes)."""
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)}"
    text = repr(value) if isinstance(value, (str, int, float, bool, type(None))) else f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(error: BaseException, limit: int = 200) -> str:
    """An exception's message on one line (YAML and JSON errors span several)."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def option_type_problems(options: Mapping[str, Any], kinds: Mapping[str, str],
                         spell: Callable[[str], str] = lambda key: key) -> list[str]:
    """Every option of ``options`` whose value is not of its kind in ``kinds``
    (absent and ``None`` values pass: defaults apply), as "`--beam` must be a
    positive integer, but is 'lots'", in the foreign framework's spelling."""
    problems = []
    for key, kind in kinds.items():
        value = options.get(key)
        wanted, ok = _KINDS[kind]
        if value is not None and not ok(value):
            problems.append(f"`{spell(key)}` must be {wanted}, but is {short_repr(value)}")
    return problems


class KeyMapper:
    """Applies a name table with ``{}`` layer placeholders to a state dict.

    ``table`` maps source patterns to unified names, or to ``None`` with a
    reason string in ``drop_reasons`` for keys dropped on purpose. Every key
    must be consumed by the table or by a named function; :meth:`leftovers`
    lists the rest.
    """

    def __init__(self, state: Mapping[str, torch.Tensor], table: Mapping[str, str | None],
                 drop_reasons: Mapping[str, str] | None = None) -> None:
        self.state = state
        self.consumed: set[str] = set()
        self.dropped: dict[str, str] = {}
        self._rules: list[tuple[re.Pattern[str], str | None, str]] = []
        for pattern, target in table.items():
            regex = re.compile("^" + re.escape(pattern).replace(r"\{\}", r"(\d+)") + "$")
            reason = (drop_reasons or {}).get(pattern, "dropped on purpose")
            self._rules.append((regex, target, reason))

    def take(self, key: str) -> torch.Tensor:
        self.consumed.add(key)
        return self.state[key]

    def drop(self, key: str, reason: str) -> None:
        self.consumed.add(key)
        self.dropped[key] = reason

    def apply(self) -> Iterator[tuple[str, torch.Tensor]]:
        for key in self.state:
            if key in self.consumed:
                continue
            for regex, target, reason in self._rules:
                m = regex.match(key)
                if not m:
                    continue
                if target is None:
                    self.drop(key, reason)
                else:
                    self.consumed.add(key)
                    yield target.format(*m.groups()), self.state[key]
                break

    def leftovers(self) -> list[str]:
        return [k for k in self.state if k not in self.consumed]


class Converter(ABC):
    """One foreign format. Subclasses are registered with :func:`register_converter`."""

    format_name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, source: str, **options: Any) -> None:
        self.source = source
        self.options = options

    @classmethod
    @abstractmethod
    def detect(cls, source: str) -> bool:
        """Whether ``source`` looks like this format (cheap: file names, magic bytes)."""

    @abstractmethod
    def plan(self, progress: bool = False) -> ConversionPlan:
        """Load, check and map; raise on every unsupported option together."""

    @staticmethod
    def unsupported(source: str, problems: list[str]) -> None:
        if problems:
            raise UnsupportedCheckpointError(source, problems)


def source_root(source: str) -> Path:
    """The folder a source lives in (the source itself when it is a folder)."""
    real = first_source_path(source).resolve()
    return real if real.is_dir() else real.parent


def check_tokenizer_assets(plan: ConversionPlan) -> None:
    """Tokenizer files are copied into the port (and published with it) only when
    they are regular files inside the source folder, followed through symlinks:
    a ``bpecodes`` that links to ``/etc/passwd`` must not travel."""
    root = source_root(plan.source)
    derived = bool(plan.tokenizer.inputs)
    for src in plan.tokenizer.inputs or list(plan.tokenizer.files.values()):
        real = Path(os.path.realpath(src))
        if not real.is_relative_to(root):
            raise InvalidInputError(f"tokenizer file `{src}` resolves to `{real}`, outside the source folder "
                                    f"`{root}` (copy the file into the folder)")
        if not real.is_file():
            raise InvalidInputError(f"tokenizer file `{src}` must be a regular file, but is not")
    if not derived:
        plan.tokenizer.files = {name: Path(os.path.realpath(src)) for name, src in plan.tokenizer.files.items()}


def make_plan(source: str, *, format: str | None = None, progress: bool = False, allow_nonfinite: bool = False,
              **options: Any) -> ConversionPlan:
    """The fixed lifecycle up to writing: pick the converter, let it load, check
    and map, then check what every converter's output must satisfy (tensors
    only, floating dtypes cast to float32, layer counts, every slot filled
    once, finite values) for every ensemble member.

    Non-finite weights are refused (they decode to empty output) unless
    ``allow_nonfinite``, which warns and records the option in the provenance.
    """
    cls = get_converter(source, format)
    if allow_nonfinite:
        options["allow_nonfinite"] = True
    plan = cls(source, **options).plan(progress=progress)
    for i, member in enumerate(plan.members):
        check_slots(plan.source, plan.config, member)
        plan.members[i] = check_dtypes(plan.source, member)
    check_tokenizer_assets(plan)
    bad = sorted({name for member in plan.members for name in nonfinite_tensors(member)})
    if bad and not allow_nonfinite:
        raise NonFiniteWeightsError(plan.source, bad)
    if bad:
        warnings.warn(f"{plan.source}: {len(bad)} tensor(s) hold NaN or infinity ({', '.join(bad[:5])}"
                      f"{', ...' if len(bad) > 5 else ''}); converted because --allow-nonfinite was given",
                      stacklevel=2)
    return plan


def write_ported(plan: ConversionPlan, output: str | os.PathLike[str], *, force: bool = False,
                 shard_bytes: int | None = None, progress: bool = False) -> Path:
    """Validate ``plan`` against the unified model and write the ported folder atomically."""
    for member in plan.members:
        check_slots(plan.source, plan.config, member)
    with atomic_output_dir(output, force=force) as tmp:
        tensors: list[tuple[str, torch.Tensor]] = []
        if len(plan.members) == 1:
            tensors = plan.members[0]
        else:
            for i, member in enumerate(plan.members):
                tensors.extend((f"members.{i}.{name}", t) for name, t in member)
        kwargs = {"shard_bytes": shard_bytes} if shard_bytes else {}
        with tqdm(total=len(tensors), desc="writing weights", unit="tensor", disable=not progress,
                  leave=False) as bar:
            weights = save_weights(tmp, tensors, progress=bar, **kwargs)
        write_json(tmp / "config.json", {
            "modelport_format_version": CONFIG_FORMAT_VERSION,
            "source_format": plan.format,
            "ensemble_size": len(plan.members),
            "model": plan.config.to_dict(),
        })
        tok_dir = tmp / "tokenizer"
        tok_dir.mkdir()
        for name, src in plan.tokenizer.files.items():
            shutil.copyfile(src, tok_dir / name)
        write_json(tok_dir / "tokenizer_config.json", plan.tokenizer.config)
        write_json(tmp / "generation_config.json", plan.generation)
        write_json(tmp / "conversion.json", {
            "converter": f"modelport.converters.{plan.format}",
            "modelport_version": __version__,
            "source": plan.source,
            "source_files": [{"path": str(p), "name": p.name, "bytes": p.stat().st_size, "sha256": sha256(p)}
                             for p in plan.source_files],
            "options": plan.options,
            "foreign_options": plan.foreign_options,
            "dropped": plan.dropped,
            "weights": weights,
            "history": [],
        })
    return Path(output)
