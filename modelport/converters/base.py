"""Converter registry and the one fixed conversion lifecycle.

load → options check → config → weights → slot check → tokenizer →
generation defaults → plan, then (``make_plan``) dtypes, tokenizer files and
finite values, then the atomic write. A converter supplies the format's
steps (:class:`Converter`); this module owns their order, the name-table
machinery every format maps its weights with (:class:`KeyMapper`), the
"every slot filled exactly once" check and the write, so no converter can
skip them.

Converters are found through the ``modelport.converters`` entry-point group
(the built-ins are declared there too, in ``pyproject.toml``); this module
never imports them itself.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import torch
from tqdm.auto import tqdm

from modelport._version import __version__
from modelport.errors import (InvalidInputError, InvalidPortedFolderError, NonFiniteWeightsError, UnknownFormatError,
                              UnsupportedCheckpointError, WeightMappingError)
from modelport.model.config import Seq2SeqConfig
from modelport.model.folder import PortedFolder, write_folder
from modelport.model.transformer import Seq2SeqModel
from modelport.values import Kind

ENTRY_POINT_GROUP = "modelport.converters"
# The built-ins as pyproject.toml declares them, for a source checkout whose
# package metadata is missing or stale: used only for the names the entry
# points do not provide (or provide with a target that no longer imports).
BUILTIN_CONVERTERS: dict[str, str] = {
    "fairseq": "modelport.converters.fairseq:FairseqConverter",
    "t5": "modelport.converters.t5:T5Converter",
    "marian": "modelport.converters.marian:MarianConverter",
}

_REGISTRY: dict[str, type[Converter[Any]]] = {}
_ENTRY_POINTS_LOADED = False


def register_converter(name: str) -> Callable[[type[Converter[Any]]], type[Converter[Any]]]:
    """Class decorator registering a converter under the foreign format's own name."""

    def wrap(cls: type[Converter[Any]]) -> type[Converter[Any]]:
        cls.format_name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _import_spec(spec: str) -> Any:
    """The object a ``"module:attr"`` entry-point value names."""
    module, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def _load_entry_points() -> None:
    """Register every converter of the entry-point group once (built-ins first,
    in :data:`BUILTIN_CONVERTERS` order, so detection order is stable)."""
    global _ENTRY_POINTS_LOADED
    if _ENTRY_POINTS_LOADED:
        return
    _ENTRY_POINTS_LOADED = True
    specs = dict(BUILTIN_CONVERTERS)
    specs.update((ep.name, ep.value) for ep in entry_points(group=ENTRY_POINT_GROUP))
    for name, spec in specs.items():
        if name in _REGISTRY:
            continue
        try:
            cls = _import_spec(spec)
        except (ImportError, AttributeError):
            if name not in BUILTIN_CONVERTERS or spec == BUILTIN_CONVERTERS[name]:
                raise
            cls = _import_spec(BUILTIN_CONVERTERS[name])  # stale metadata of a source checkout
        if name not in _REGISTRY:  # a converter that does not register itself
            if not cls.format_name:
                cls.format_name = name
            _REGISTRY[name] = cls


def converters() -> dict[str, type[Converter[Any]]]:
    """All registered converters by format name (built-ins and entry points)."""
    _load_entry_points()
    return dict(_REGISTRY)


def source_paths(source: str) -> list[Path]:
    """The paths ``source`` names: itself, or each checkpoint of an ensemble
    ``a.pt:b.pt`` (a path that exists with a colon in it is taken whole)."""
    if ":" in source and not Path(source).exists():
        return [Path(part) for part in source.split(":") if part] or [Path(source)]
    return [Path(source)]


def first_source_path(source: str) -> Path:
    """``source`` as a path, or its first checkpoint when it names an ensemble."""
    return source_paths(source)[0]


def get_converter(source: str, format: str | None = None) -> type[Converter[Any]]:
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
        return {
            "format": self.format,
            "source": self.source,
            "ensemble_size": len(self.members),
            "parameters_per_member": self.parameters,
            "architecture": self.config.architecture(),
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


# elements checked at a time: torch.isfinite builds ``abs(t)`` (as large as t) and a bool mask,
# so a whole 256k x 1024 embedding at once added ~1 GB to the peak RSS (NLLB-200-600M)
_FINITE_CHUNK = 1 << 22


def all_finite(t: torch.Tensor) -> bool:
    """Whether ``t`` holds no NaN or infinity, read in row blocks of views (no copy of ``t``)."""
    if t.dim() == 0 or t.numel() <= _FINITE_CHUNK:
        return bool(torch.isfinite(t).all())
    rows = max(1, _FINITE_CHUNK // max(1, t[0].numel()))
    return all(bool(torch.isfinite(block).all()) for block in t.split(rows))


def nonfinite_tensors(mapped: list[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the tensors holding NaN or infinity (each tensor read once),
    -inf in a logits bias excepted."""
    bad = []
    for name, t in mapped:
        if all_finite(t):
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


# a switch in a framework's file: true/false, or 0/1 as Marian's YAML and fairseq's args also write it
ON_OFF = Kind("true or false", lambda v: type(v) is bool or v in (0, 1))


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


def option_type_problems(options: Mapping[str, Any], kinds: Mapping[str, Kind],
                         spell: Callable[[str], str] = lambda key: key) -> list[str]:
    """Every option of ``options`` whose value is not of its kind in ``kinds``
    (absent and ``None`` values pass: defaults apply), as "`--beam` must be a
    positive integer, but is 'lots'", in the foreign framework's spelling."""
    problems = []
    for key, kind in kinds.items():
        value = options.get(key)
        if value is not None and not kind.admits(value):
            problems.append(f"`{spell(key)}` {kind.refusal(short_repr(value))}")
    return problems


class TensorShapeError(ValueError):
    """A rule's transform refusing a source tensor of a layout it does not take (its message
    follows the key's name: "has shape [2, 16], but ...")."""


Transform = Callable[..., Any]
Target = str | tuple[str, ...] | Callable[..., "str | None"] | None


@dataclass(frozen=True)
class Rule:
    """What becomes of the source keys one name-table entry matches.

    ``target`` is the unified name (a template filled with the numbers the
    key's pattern captured); several names (the transform's result is split
    among them, or one tensor fills them all as aliases); a callable that
    computes the name from the captured numbers (``None``: this rule does not
    apply, the key stays unmatched); or ``None``: the key is dropped on
    purpose, for ``reason``. ``transform`` turns the source value into the
    slot's tensor (transpose, reshape, split...); with ``also``, the further
    source keys (templates like the pattern) are consumed and passed to it
    after the matched one (a concatenation).
    """

    target: Target
    transform: Transform | None = None
    reason: str = "dropped on purpose"
    also: tuple[str, ...] = ()


def drop(reason: str) -> Rule:
    """A rule dropping the keys it matches, for ``reason``."""
    return Rule(None, reason=reason)


def split(parts: int, dim: int = 0) -> Transform:
    """A transform cutting a fused tensor into ``parts`` equal views along ``dim``."""

    def cut(t: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(t.chunk(parts, dim=dim))

    return cut


def transpose(t: torch.Tensor) -> torch.Tensor:
    """A 2-D tensor transposed (``[in, out]`` kernels to torch's ``[out, in]``), contiguous."""
    return t.t().contiguous() if t.dim() == 2 else t


def _pattern(key: str | re.Pattern[str]) -> re.Pattern[str]:
    if isinstance(key, re.Pattern):
        return key
    return re.compile("^" + re.escape(key).replace(r"\{\}", r"(\d+)") + "$")


class KeyMapper:
    """Applies a name table to a state dict: the one way converters map weights.

    ``table`` maps source keys to :class:`Rule` s (or plain unified names, or
    ``None`` with a reason in ``drop_reasons``). A key is an exact name, a
    name with ``{}`` placeholders for numbers (layer indices), or a compiled
    regular expression (fully matched; its groups fill the target template).
    Rules are tried in table order, the first that applies wins. With
    ``first_index``, captured numbers are read as integers counted from it
    (Marian counts layers from 1; Mesh-TF zero-pads them) and a number below
    it matches nothing; without, they are substituted as written.

    Every key must be consumed by the table or by a named function
    (:meth:`take`, :meth:`drop`); :meth:`check` raises one
    :class:`WeightMappingError` listing :attr:`problems` and every key left
    over, each as ``unmatched`` formats it.
    """

    def __init__(self, state: Mapping[str, Any], table: Mapping[Any, str | Rule | None],
                 drop_reasons: Mapping[str, str] | None = None, *, first_index: int | None = None,
                 unmatched: str = "key `{}` has no slot in the unified model") -> None:
        self.state = state
        self.consumed: set[str] = set()
        self.dropped: dict[str, str] = {}
        self.problems: list[str] = []
        self.first_index = first_index
        self.unmatched = unmatched
        self._rules: list[tuple[re.Pattern[str], Rule]] = []
        for key, rule in table.items():
            if not isinstance(rule, Rule):
                rule = Rule(rule, reason=(drop_reasons or {}).get(key, "dropped on purpose"))
            self._rules.append((_pattern(key), rule))

    def take(self, key: str) -> Any:
        self.consumed.add(key)
        return self.state[key]

    def drop(self, key: str, reason: str) -> None:
        self.consumed.add(key)
        self.dropped[key] = reason

    def _numbers(self, groups: Sequence[str]) -> list[str] | None:
        if self.first_index is None:
            return list(groups)
        out = []
        for g in groups:
            if g is not None and g.isdigit():
                n = int(g) - self.first_index
                if n < 0:
                    return None
                g = str(n)
            out.append(g)
        return out

    def _resolve(self, key: str) -> tuple[Rule, list[str], Any] | None:
        """The rule that applies to ``key``, its captured values and its target."""
        for regex, rule in self._rules:
            m = regex.fullmatch(key)
            if not m:
                continue
            numbers = self._numbers(m.groups())
            if numbers is None:
                continue
            target = rule.target(*numbers) if callable(rule.target) else rule.target
            if target is None and rule.target is not None:
                continue  # a computed target that does not exist: the next rule may apply
            return rule, numbers, target
        return None

    def apply(self) -> Iterator[tuple[str, Any]]:
        """``(unified name, tensor)`` of every key not yet consumed that a rule
        maps; keys dropped by a rule are recorded in :attr:`dropped`."""
        for key in list(self.state):
            if key in self.consumed:
                continue
            found = self._resolve(key)
            if found is None:
                continue
            rule, numbers, target = found
            if target is None:
                self.drop(key, rule.reason)
                continue
            values = [self.take(key)]
            for extra in rule.also:
                name = extra.format(*numbers)
                if name not in self.state:
                    self.problems.append(f"`{name}` is missing (it is read with `{key}`)")
                    break
                values.append(self.take(name))
            else:
                try:
                    yield from self._emit(target, numbers, rule, values)
                except TensorShapeError as e:  # a transform that refuses its tensor: said with every other problem
                    self.problems.append(f"`{key}` {e}")

    @staticmethod
    def _emit(target: str | tuple[str, ...], numbers: list[str], rule: Rule,
              values: list[Any]) -> Iterator[tuple[str, Any]]:
        result = rule.transform(*values) if rule.transform is not None else values[0]
        names = [target] if isinstance(target, str) else list(target)
        names = [n.format(*numbers) for n in names]
        parts = list(result) if isinstance(result, (tuple, list)) else [result] * len(names)
        if len(parts) != len(names):
            raise AssertionError(f"a rule gives {len(parts)} tensors for {len(names)} slots: {names}")
        yield from zip(names, parts)

    def leftovers(self) -> list[str]:
        return [k for k in self.state if k not in self.consumed]

    def check(self, source: str) -> None:
        """Raise every problem and every key not consumed together."""
        problems = self.problems + [self.unmatched.format(k) for k in self.leftovers()]
        if problems:
            raise WeightMappingError(source, problems)


@dataclass
class MappedWeights:
    """A converter's weights in unified names: one list per ensemble member,
    and the source keys dropped on purpose with their reasons."""

    members: list[list[tuple[str, torch.Tensor]]]
    dropped: dict[str, str]


S = TypeVar("S")  # what a converter's load_source read (its own dataclass)


class Converter(ABC, Generic[S]):
    """One foreign format: the steps of :meth:`plan`, registered with
    :func:`register_converter` (or through the entry-point group)."""

    format_name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, source: str, **options: Any) -> None:
        self.source = source
        self.options = options

    @classmethod
    @abstractmethod
    def detect(cls, source: str) -> bool:
        """Whether ``source`` looks like this format (cheap: file names, magic bytes)."""

    def plan(self, progress: bool = False) -> ConversionPlan:
        """The fixed lifecycle: load → options check → config → weights → slot
        check → tokenizer → generation defaults. Formats fill in the steps; the
        order (and so which error a broken source reports first) is this one."""
        loaded = self.load_source(progress)
        self.check_options(loaded)
        config = self.build_config(loaded)
        weights = self.map_weights(loaded, config)
        for member in weights.members:
            check_slots(self.source, config, member)
        tokenizer = self.tokenizer_assets(loaded, config)
        generation = self.generation_defaults(loaded, config)
        return ConversionPlan(
            format=self.format_name, source=self.source, config=config, members=weights.members,
            dropped=weights.dropped, tokenizer=tokenizer, generation=generation,
            source_files=self.source_files(loaded, tokenizer),
            options={k: v for k, v in self.options.items() if v is not None},
            foreign_options=self.foreign_options(loaded),
        )

    @abstractmethod
    def load_source(self, progress: bool) -> S:
        """Read the checkpoint's files (weights may be read lazily); raise on
        missing or corrupt files."""

    def check_options(self, loaded: S) -> None:
        """Raise :class:`UnsupportedCheckpointError` listing every unsupported
        option together, in the foreign framework's own words (see :meth:`unsupported`)."""

    @abstractmethod
    def build_config(self, loaded: S) -> Seq2SeqConfig:
        """The unified config of checked options."""

    @abstractmethod
    def map_weights(self, loaded: S, config: Seq2SeqConfig) -> MappedWeights:
        """Every source tensor mapped onto a slot or dropped with a reason (a :class:`KeyMapper` table)."""

    @abstractmethod
    def tokenizer_assets(self, loaded: S, config: Seq2SeqConfig) -> TokenizerAssets:
        """The files and config of the port's ``tokenizer/``."""

    @abstractmethod
    def generation_defaults(self, loaded: S, config: Seq2SeqConfig) -> dict[str, Any]:
        """The source framework's decoding defaults and semantics profile."""

    @abstractmethod
    def source_files(self, loaded: S, tokenizer: TokenizerAssets) -> list[Path]:
        """The files the port was made from (hashed into the provenance)."""

    def foreign_options(self, loaded: S) -> dict[str, Any]:
        """The source's options as it names them, for the provenance."""
        return {}

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


def make_plan(source: str | os.PathLike[str], *, format: str | None = None, progress: bool = False,
              allow_nonfinite: bool = False, **options: Any) -> ConversionPlan:
    """The fixed lifecycle up to writing: pick the converter, run its
    :meth:`Converter.plan` (tensors only, layer counts, every slot filled once
    are checked there), then check what every converter's output must satisfy
    (floating dtypes cast to float32, tokenizer files inside the source
    folder, finite values) for every ensemble member.

    Non-finite weights are refused (they decode to empty output) unless
    ``allow_nonfinite``, which warns and records the option in the provenance.
    """
    source = os.fspath(source)  # a path or an ensemble's `a.pt:b.pt`, read as text from here on
    cls = get_converter(source, format)
    if allow_nonfinite:
        options["allow_nonfinite"] = True
    plan = cls(source, **options).plan(progress=progress)  # slots checked there
    for i, member in enumerate(plan.members):
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
    with write_folder(output, force=force) as folder:
        tensors: list[tuple[str, torch.Tensor]] = []
        if len(plan.members) == 1:
            tensors = plan.members[0]
        else:
            for i, member in enumerate(plan.members):
                tensors.extend((f"members.{i}.{name}", t) for name, t in member)
        kwargs = {"shard_bytes": shard_bytes} if shard_bytes else {}
        with tqdm(total=len(tensors), desc="writing weights", unit="tensor", disable=not progress,
                  leave=False) as bar:
            weights = folder.write_weights(tensors, progress=bar, **kwargs)
        folder.write_config(plan.config, source_format=plan.format, ensemble_size=len(plan.members))
        folder.write_tokenizer(plan.tokenizer.files, plan.tokenizer.config)
        folder.write_generation(plan.generation)
        folder.write_conversion({
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
        try:  # the checks every command makes of a folder: none is written that they would refuse
            PortedFolder.open(folder.path)
        except InvalidPortedFolderError as e:
            raise UnsupportedCheckpointError(plan.source, [f"its port would not be a valid folder: {e.problem}"]) \
                from None
    return Path(output)
