"""Bad input: typed errors, exit code 2 with one clear line, nothing executed,
nothing half-written, nothing overwritten without --force."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import modelport
from modelport.cli import main
from modelport.errors import (
    CorruptCheckpointError,
    InvalidInputError,
    OutputExistsError,
    UnsafeCheckpointError,
    UnsupportedCheckpointError,
)

from tests.helpers.fairseq_ref import build_fairseq_model


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("modelport: error: ")
    assert "Traceback" not in err
    return lines[0]


def _no_leftovers(parent: Path, name: str) -> None:
    assert not (parent / name).exists()
    assert not [p for p in parent.iterdir() if p.name.startswith(f".{name}.")], list(parent.iterdir())


@pytest.fixture()
def fairseq_dir(tmp_path: Path) -> Path:
    pytest.importorskip("fairseq")  # builds a real fairseq checkpoint
    build_fairseq_model(tmp_path / "src")
    return tmp_path / "src"


class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path: Path, fairseq_dir: Path, capsys, legacy: bool) -> None:
    marker = tmp_path / "pwned"
    ckpt = torch.load(fairseq_dir / "model.pt", weights_only=False)
    ckpt["extra_state"] = {"payload": _Payload(marker)}
    torch.save(ckpt, fairseq_dir / "model.pt", _use_new_zipfile_serialization=not legacy)

    with pytest.raises(UnsafeCheckpointError) as info:
        modelport.inspect(str(fairseq_dir))
    assert info.value.global_name in ("posix.system", "os.system")
    code, _, err = _run(["convert", str(fairseq_dir), str(tmp_path / "out")], capsys)
    assert code == 2
    line = _one_line_error(err)
    assert "system" in line and "not allowed" in line
    assert not marker.exists()
    _no_leftovers(tmp_path, "out")


def test_malicious_pickle_in_subprocess(tmp_path: Path, fairseq_dir: Path) -> None:
    """The real command line, in a fresh interpreter."""
    marker = tmp_path / "pwned2"
    data = pickle.dumps({"model": {}, "args": _Payload(marker)}, protocol=2)
    (fairseq_dir / "model.pt").write_bytes(data)
    proc = subprocess.run([sys.executable, "-m", "modelport.cli", "inspect", str(fairseq_dir)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    _one_line_error(proc.stderr)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    path = fairseq_dir / "model.pt"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptCheckpointError):
        modelport.inspect(str(fairseq_dir))
    code, _, err = _run(["convert", str(fairseq_dir), str(tmp_path / "out")], capsys)
    assert code == 2
    assert "truncated or corrupt" in _one_line_error(err)
    _no_leftovers(tmp_path, "out")


def test_truncated_legacy_checkpoint(tmp_path: Path) -> None:
    pytest.importorskip("fairseq")
    build_fairseq_model(tmp_path / "src", layout="args-legacy")
    path = tmp_path / "src" / "model.pt"
    path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(CorruptCheckpointError):
        modelport.inspect(str(tmp_path / "src"))


def test_empty_checkpoint(tmp_path: Path, fairseq_dir: Path) -> None:
    (fairseq_dir / "model.pt").write_bytes(b"")
    with pytest.raises(CorruptCheckpointError, match="empty"):
        modelport.inspect(str(fairseq_dir))


def test_missing_dictionary(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    (fairseq_dir / "dict.de.txt").unlink()
    with pytest.raises(InvalidInputError):
        modelport.inspect(str(fairseq_dir))
    code, _, err = _run(["convert", str(fairseq_dir), str(tmp_path / "out")], capsys)
    assert code == 2
    assert "dict.de.txt" in _one_line_error(err)
    _no_leftovers(tmp_path, "out")


def test_dictionary_of_wrong_size(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    path = fairseq_dir / "dict.de.txt"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-3]))
    with pytest.raises(UnsupportedCheckpointError, match="rows"):
        modelport.inspect(str(fairseq_dir))
    code, _, err = _run(["convert", str(fairseq_dir), str(tmp_path / "out")], capsys)
    assert code == 2
    line = _one_line_error(err)
    assert "dict.de.txt" in line and "embedding" in line
    _no_leftovers(tmp_path, "out")


def test_unsupported_options_all_reported(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    ckpt = torch.load(fairseq_dir / "model.pt", weights_only=False)
    model_cfg = ckpt["cfg"]["model"]
    model_cfg.arch = "lstm_wiseman_iwslt_de_en"
    model_cfg.adaptive_softmax_cutoff = "1000,2000"
    model_cfg.cross_self_attention = True
    model_cfg.activation_fn = "tanh"
    torch.save(ckpt, fairseq_dir / "model.pt")
    with pytest.raises(UnsupportedCheckpointError) as info:
        modelport.inspect(str(fairseq_dir))
    assert len(info.value.problems) == 4
    code, _, err = _run(["inspect", str(fairseq_dir)], capsys)
    assert code == 2
    line = _one_line_error(err)
    for words in ("--arch lstm_wiseman_iwslt_de_en", "--adaptive-softmax-cutoff", "--cross-self-attention",
                  "--activation-fn tanh", "supported: transformer"):
        assert words in line


def test_existing_output_not_overwritten_without_force(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(OutputExistsError):
        modelport.convert(str(fairseq_dir), out)
    code, _, err = _run(["convert", str(fairseq_dir), str(out)], capsys)
    assert code == 2 and "--force" in _one_line_error(err)
    assert (out / "keep.txt").read_text() == "precious"
    code, stdout, _ = _run(["convert", str(fairseq_dir), str(out), "--force"], capsys)
    assert code == 0 and "written to" in stdout
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


def test_failure_while_writing_leaves_nothing(tmp_path: Path, fairseq_dir: Path, monkeypatch) -> None:
    import modelport.model.folder as folder

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(folder, "save_weights", boom)
    with pytest.raises(OSError):
        modelport.convert(str(fairseq_dir), tmp_path / "out")
    _no_leftovers(tmp_path, "out")


def test_unknown_source(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    code, _, err = _run(["inspect", str(tmp_path / "notes.txt")], capsys)
    assert code == 2 and "not a known checkpoint format (known: fairseq" in _one_line_error(err)
    code, _, err = _run(["inspect", str(tmp_path / "missing")], capsys)
    assert code == 2 and "does not exist" in _one_line_error(err)
    code, _, err = _run(["inspect", str(tmp_path), "--format", "tensorflow"], capsys)
    assert code == 2 and "not a known checkpoint format" in _one_line_error(err)


def test_not_a_fairseq_checkpoint(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    torch.save({"state_dict": {"w": torch.zeros(2)}}, fairseq_dir / "model.pt")
    code, _, err = _run(["inspect", str(fairseq_dir)], capsys)
    assert code == 2 and "no `model` entry" in _one_line_error(err)


def test_several_checkpoints_need_a_choice(tmp_path: Path, fairseq_dir: Path, capsys) -> None:
    (fairseq_dir / "model.pt").rename(fairseq_dir / "checkpoint_best.pt")
    (fairseq_dir / "checkpoint_last.pt").write_bytes((fairseq_dir / "checkpoint_best.pt").read_bytes())
    code, _, err = _run(["inspect", str(fairseq_dir)], capsys)
    assert code == 2 and "--checkpoint" in _one_line_error(err)
    code, _, _ = _run(["inspect", str(fairseq_dir), "--checkpoint", "checkpoint_best.pt"], capsys)
    assert code == 0
