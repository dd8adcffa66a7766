"""Property-based fuzzing of every reader of untrusted bytes.

Random mutations (byte flips, insertions, deletions, truncations, splices of
the file with itself) of valid fixtures are fed to the restricted unpickler
(zip and legacy torch checkpoints), the npz + ``special:model.yml`` reader,
Marian YAML vocabularies and ``decoder.yml``, the ported-folder loader
(config.json, safetensors) and the TensorFlow checkpoint index reader. The
property: the reader returns, or raises a :class:`ModelportError` (exit 2 in
the CLI); anything else would be a traceback (exit 1). Each example runs
under a time budget (hypothesis' deadline, 20 s) inside this process, and the
module's campaign may raise the process's peak RSS by at most 1 GiB.

CI runs ``MODELPORT_FUZZ_EXAMPLES`` examples per target (default 40); set it
higher for a longer campaign, e.g. ``MODELPORT_FUZZ_EXAMPLES=2000``.
"""

from __future__ import annotations

import io
import os
import shutil
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelport.errors import ModelportError

EXAMPLES = int(os.environ.get("MODELPORT_FUZZ_EXAMPLES", "40"))
_COMMON = dict(deadline=20_000, derandomize=not os.environ.get("MODELPORT_FUZZ_RANDOM"), database=None,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                      HealthCheck.data_too_large])
FUZZ = settings(max_examples=EXAMPLES, **_COMMON)
# targets that run a whole conversion or load per example get a third as many
FUZZ_SLOW = settings(max_examples=max(EXAMPLES // 3, 5), **_COMMON)
DATA = Path(__file__).resolve().parents[1] / "data"


@st.composite
def mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits (the kind a damaged or crafted file has)."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "splice"]))
        pos = draw(st.integers(0, max(len(buf) - 1, 0)))
        if kind == "flip" and buf:
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and buf:
            buf[pos] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, ord("."), ord("("), ord("R")]))
        elif kind == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del buf[pos:pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "splice" and buf:
            start = draw(st.integers(0, len(buf) - 1))
            buf[pos:pos] = buf[start:start + draw(st.integers(1, 64))]
    return bytes(buf)


MAX_RSS_GROWTH = 1024**3


@pytest.fixture(autouse=True, scope="module")
def bounded_memory():
    """The whole campaign may not raise this process's peak RSS by more than
    1 GiB: no mutation may make a reader allocate what the file claims."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert grown < MAX_RSS_GROWTH, f"peak RSS grew by {grown} bytes during fuzzing"


def _only_typed(fn, *args) -> None:
    try:
        fn(*args)
    except ModelportError:
        pass


# ---------------------------------------------------------------------------
# torch checkpoints through the restricted unpickler


def _small_checkpoint(legacy: bool) -> bytes:
    import argparse

    state = {"model": OrderedDict(w=torch.arange(6, dtype=torch.float32).reshape(2, 3), b=torch.ones(3)),
             "args": argparse.Namespace(arch="transformer", encoder_layers=1, lr=[0.1]),
             "cfg": {"model": {"dims": [1, 2, 3], "name": "x"}}, "extra": ({1, 2}, b"bytes", 1.5, None)}
    buf = io.BytesIO()
    torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_fuzz_restricted_unpickler_on_checkpoints(tmp_path: Path, legacy: bool) -> None:
    from modelport.converters.safe_pickle import safe_torch_load

    original = _small_checkpoint(legacy)
    path = tmp_path / "c.pt"

    @FUZZ
    @given(mutations(original))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        _only_typed(safe_torch_load, path)

    check()


def test_fuzz_restricted_unpickler_on_pickles() -> None:
    """Mutations of the pickle stream alone (opcodes, not the container)."""
    import pickle

    from modelport.converters.safe_pickle import RestrictedUnpickler, to_plain

    import argparse

    original = pickle.dumps({"a": [1, 2.5, "x", (None, True)], "o": OrderedDict(c=[1]), "s": {1, 2},
                             "ns": argparse.Namespace(arch="t", depth=[3, 4]), "b": bytearray(b"ab")}, protocol=2)

    def load(data: bytes) -> None:
        try:
            to_plain(RestrictedUnpickler(io.BytesIO(data)).load())
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
                UnicodeError, OverflowError):
            # outside torch.load the caller (safe_torch_load) turns these into
            # CorruptCheckpointError; what must never escape is execution or a
            # refused call going through
            pass

    @FUZZ
    @given(mutations(original))
    def check(data: bytes) -> None:
        _only_typed(load, data)

    check()


# ---------------------------------------------------------------------------
# Marian: npz, special:model.yml, YAML vocabularies, decoder.yml


MARIAN = DATA / "marian" / "post_tiedall_swish"


def _marian_copy(tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(MARIAN, dest)
    return dest


def _npz_path(directory: Path) -> Path:
    return directory / yaml.safe_load((directory / "decoder.yml").read_text())["models"][0]


def _marian_plan(directory: Path) -> None:
    import modelport

    modelport.inspect(str(directory), format="marian")


def test_fuzz_marian_npz_bytes(tmp_path: Path) -> None:
    """The npz container and its .npy headers (the reader a Marian plan starts with)."""
    from modelport.converters.marian import read_model_yml, read_npz

    original = _npz_path(MARIAN).read_bytes()
    path = tmp_path / "model.npz"

    def read(p: Path) -> None:
        read_model_yml(read_npz(p), p)

    @FUZZ
    @given(mutations(original))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        _only_typed(read, path)

    check()


def test_fuzz_marian_model_yml(tmp_path: Path) -> None:
    with np.load(_npz_path(MARIAN), allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    text = bytes(arrays["special:model.yml"]).split(b"\0", 1)[0]

    @FUZZ_SLOW
    @given(mutations(text))
    def check(data: bytes) -> None:
        src = _marian_copy(tmp_path)
        np.savez(_npz_path(src), **{**arrays, "special:model.yml": np.frombuffer(data + b"\0", dtype=np.int8)})
        _only_typed(_marian_plan, src)

    check()


@pytest.mark.parametrize("name", ["vocab", "decoder.yml"])
def test_fuzz_marian_yaml_files(tmp_path: Path, name: str) -> None:
    decoder = yaml.safe_load((MARIAN / "decoder.yml").read_text())
    rel = decoder["vocabs"][0] if name == "vocab" else "decoder.yml"
    original = (MARIAN / rel).read_bytes()[:4000]  # the head of a vocabulary is enough to break it

    @FUZZ_SLOW
    @given(mutations(original))
    def check(data: bytes) -> None:
        src = _marian_copy(tmp_path)
        (src / rel).write_bytes(data if name == "decoder.yml" else data + (MARIAN / rel).read_bytes()[4000:])
        _only_typed(_marian_plan, src)

    check()


# ---------------------------------------------------------------------------
# ported folders: config.json and the safetensors header


@pytest.fixture(scope="module")
def ported_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import modelport

    out = tmp_path_factory.mktemp("fuzz") / "ported"
    modelport.convert(str(DATA / "marian" / "post_untied_relu"), out, format="marian")
    return out


@pytest.mark.parametrize("name", ["config.json", "model.safetensors"])
def test_fuzz_ported_folder(tmp_path: Path, ported_folder: Path, name: str) -> None:
    import modelport

    original = (ported_folder / name).read_bytes()
    if name == "model.safetensors":  # mutate the JSON header and the first tensor bytes, not deep inside weights
        head = 8 + int.from_bytes(original[:8], "little") + 256
        original, tail = original[:head], original[head:]
    else:
        tail = b""

    @FUZZ_SLOW
    @given(mutations(original))
    def check(data: bytes) -> None:
        folder = tmp_path / "p"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(ported_folder, folder)
        (folder / name).write_bytes(data + tail)
        _only_typed(modelport.load, folder)

    check()


# ---------------------------------------------------------------------------
# TensorFlow checkpoint index (Mesh-TF T5)


def test_fuzz_tf_index(tmp_path: Path) -> None:
    from modelport.converters.tf_checkpoint import TFCheckpoint

    src = DATA / "t5_tf" / "v1_0"
    original = (src / "model.ckpt-1000.index").read_bytes()

    def read(prefix: Path) -> None:
        ckpt = TFCheckpoint(prefix)
        ckpt.check_shards()
        for name in list(ckpt.entries)[:4]:
            ckpt.read(name)

    @FUZZ
    @given(mutations(original))
    def check(data: bytes) -> None:
        folder = tmp_path / "tf"
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(src, folder)
        (folder / "model.ckpt-1000.index").write_bytes(data)
        _only_typed(read, folder / "model.ckpt-1000.index")

    check()
