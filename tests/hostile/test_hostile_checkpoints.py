"""Hostile checkpoints against `inspect`, `convert` and `validate`.

Every payload is built at run time by tests/hostile/payloads.py. Each case
asserts exit 2 with one `modelport: error:` line, nothing executed, no file
written outside the output, no output folder left behind. Cases that would
exhaust memory or time on an unprotected loader run in a child process under
RLIMIT_AS 2 GiB and a 60 s timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.cli import one_line_error
from tests.helpers.requires import requires
from tests.hostile import payloads
from modelport.converters.safe_pickle import safe_torch_load
from modelport.errors import CorruptCheckpointError, ResourceLimitError, UnsafeCheckpointError

LIMIT_AS = 2 * 1024**3
TIMEOUT = 60


def _convert_refused(folder: Path, tmp: Path, capsys, *extra: str) -> str:
    out = tmp / "out"
    line = one_line_error(["convert", str(folder), str(out), *extra], capsys)
    assert not out.exists() and not list(tmp.glob(".out*")), "a refused conversion left an output behind"
    return line


def run_limited(argv: list[str], cwd: Path) -> tuple[int, str, float, int]:
    """``modelport argv`` in a child under RLIMIT_AS and a timeout:
    (exit code, stderr, seconds, peak RSS in bytes)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT_AS, LIMIT_AS))

    err_path = cwd.parent / f"stderr-{cwd.name}.txt"
    start = time.monotonic()
    with open(err_path, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "modelport.cli", *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=err, preexec_fn=limit, env={**os.environ, "PYTHONWARNINGS": "ignore"})
        while True:  # os.wait4 gives this child's own peak RSS
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - start > TIMEOUT:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err_path.read_text(), time.monotonic() - start, usage.ru_maxrss * 1024


def assert_one_line_exit_2(code: int, err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("modelport: error: "), (code, err[-2000:])
    return lines[0]


# ---------------------------------------------------------------------------
# security: nothing from a checkpoint runs or writes


@requires('fairseq')
def test_validate_never_executes_the_reference_pickle(tmp_path: Path, ported_default, capsys,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "MARKER"
    ref = payloads.exec_marker(tmp_path / "ref", marker)
    data = tmp_path / "data.txt"
    data.write_text("Hello world.\n")
    monkeypatch.chdir(tmp_path)
    # validate first compares the reference with the sha256 conversion.json recorded, which alone
    # refuses this file; a port without recorded hashes (older folders) reaches the loader itself
    port = tmp_path / "port"
    shutil.copytree(ported_default.path, port)
    conversion = json.loads((port / "conversion.json").read_text())
    for entry in conversion["source_files"]:
        entry.pop("sha256")
    (port / "conversion.json").write_text(json.dumps(conversion))
    line = one_line_error(["validate", str(port), "--reference", str(ref), "--data", str(data)], capsys)
    assert "posix.system" in line and "nothing from the file was executed" in line
    assert not marker.exists(), "the reference checkpoint's pickle ran a command"
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(ref), "--data", str(data)],
                          capsys)
    assert "is not the checkpoint" in line and not marker.exists()


@requires('fairseq')
def test_validate_reference_loads_through_the_restricted_reader(tmp_path: Path, ported_default,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The genuine reference still validates, and fairseq is handed a sanitised copy, never the file."""
    from modelport.validators.references import fairseq_generator

    seen: list[str] = []
    real = fairseq_generator.sanitized_fairseq_checkpoints

    def spy(paths):
        seen.extend(map(str, paths))
        return real(paths)

    monkeypatch.setattr(fairseq_generator, "sanitized_fairseq_checkpoints", spy)
    monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", raising=False)
    ref = fairseq_generator.FairseqReference(str(payloads.DEFAULT_MODEL), "en", "de")
    assert seen == [str(payloads.DEFAULT_MODEL / "model.pt")]
    assert len(ref.models) == 1


def test_legacy_checkpoint_cannot_write_a_patch_file(tmp_path: Path, capsys,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    folder = payloads.legacy_patch_writer(tmp_path / "ckpt", name="pwned")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    for argv in (["inspect", str(folder)], ["convert", str(folder), str(tmp_path / "out")]):
        line = one_line_error(argv, capsys)
        assert "argparse.Namespace" in line
    assert list(work.iterdir()) == [] and not list(tmp_path.glob("*.patch"))
    assert not hasattr(argparse.Namespace, "dump_patches") and argparse.Namespace.__name__ == "Namespace"


def test_build_on_a_class_is_refused(tmp_path: Path) -> None:
    folder = payloads.build_on_class(tmp_path / "ckpt")
    with pytest.raises(UnsafeCheckpointError, match="sets the state of `argparse.Namespace`"):
        safe_torch_load(folder / "model.pt")
    assert not hasattr(argparse.Namespace, "dump_patches")


def test_module_persistent_id_is_refused(tmp_path: Path) -> None:
    folder = payloads.legacy_module_pid(tmp_path / "ckpt")
    with pytest.raises(UnsafeCheckpointError, match="persistent id of type 'module'"):
        safe_torch_load(folder / "model.pt")


def test_symlinked_tokenizer_file_outside_the_folder_is_refused(tmp_path: Path, capsys) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:secret\n")
    folder = payloads.outside_symlink(tmp_path / "ckpt", target=str(secret))
    line = _convert_refused(folder, tmp_path, capsys)
    assert "outside the source folder" in line and "bpecodes" in line


def test_symlinked_tokenizer_file_inside_the_folder_is_copied(tmp_path: Path) -> None:
    import modelport

    folder = payloads.fairseq_folder(tmp_path / "ckpt", payloads.DEFAULT_MODEL / "model.pt")
    (folder / "bpecodes").rename(folder / "codes.real")
    (folder / "bpecodes").symlink_to("codes.real")
    ported = modelport.convert(str(folder), tmp_path / "out")
    copied = ported.path / "tokenizer" / "bpecodes"
    assert not copied.is_symlink() and copied.read_bytes() == (folder / "codes.real").read_bytes()


@pytest.mark.parametrize("via_parameter", [False, True], ids=["Tensor(n)", "parameter_with_state"])
def test_uninitialised_tensor_is_refused(tmp_path: Path, capsys, via_parameter: bool) -> None:
    folder = payloads.uninitialised_tensor(tmp_path / "ckpt", via_parameter=via_parameter)
    line = _convert_refused(folder, tmp_path, capsys)
    assert "calls `torch.Tensor`, which a checkpoint may only name" in line


def test_storage_larger_than_its_record_is_refused(tmp_path: Path, capsys) -> None:
    folder = payloads.oversized_storage(tmp_path / "ckpt")
    line = _convert_refused(folder, tmp_path, capsys)
    assert "declares 512 bytes but holds 16" in line


# ---------------------------------------------------------------------------
# exit 2, not a traceback


@pytest.mark.parametrize("make, expected", [
    (payloads.codec_lookup, "only latin1 text"),
    (payloads.self_cfg, "nesting of its configuration"),
    (payloads.deep_cfg, "nesting of its configuration"),
], ids=["unknown codec", "cfg contains itself", "cfg 100k deep"])
def test_malformed_pickle_is_one_line(tmp_path: Path, capsys, make, expected: str) -> None:
    line = _convert_refused(make(tmp_path / "ckpt"), tmp_path, capsys)
    assert expected in line


@pytest.mark.parametrize("payload", [
    b"\x80\x02(X\x06\x00\x00\x00moduleK\x01tQ.",  # persistent id of another type
    b"\x80\x02K\x01Q.",  # persistent id that is not a tuple
    b"\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuG\x7f\xf0"
    b"\x00\x00\x00\x00\x00\x00tQ.",  # numel = inf
    b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R.",  # a rebuild without a storage
    b"\x80\x02cbuiltins\nint\nG\x7f\xf0\x00\x00\x00\x00\x00\x00\x85R.",  # int(float('inf'))
], ids=["typename", "non-tuple id", "inf numel", "no storage", "int(inf)"])
def test_persistent_id_and_call_abuse_is_typed(tmp_path: Path, payload: bytes) -> None:
    path = payloads.write_torch_zip(tmp_path / "x.pt", payload, {})
    with pytest.raises((UnsafeCheckpointError, CorruptCheckpointError)):
        safe_torch_load(path)


def test_nonfinite_weights_are_refused_unless_allowed(tmp_path: Path, capsys) -> None:
    folder = payloads.nonfinite_weight(tmp_path / "ckpt")
    line = _convert_refused(folder, tmp_path, capsys)
    assert "NaN or infinite values in 1 tensor(s)" in line and "--allow-nonfinite" in line
    from modelport.cli import main

    assert main(["convert", str(folder), str(tmp_path / "out"), "--allow-nonfinite"]) == 0
    warned = [x for x in capsys.readouterr().err.splitlines() if "hold NaN or infinity" in x]
    assert len(warned) == 1 and warned[0].startswith("modelport: warning: ")  # one line, no source location
    data = tmp_path / "in.txt"
    data.write_text("Good morning.\nHello world.\n")
    for extra in ([], ["--beam", "1"], ["--semantics", "fairseq", "--nbest", "2"]):
        line = one_line_error(["translate", str(tmp_path / "out"), "-i", str(data), *extra], capsys)
        assert "line 1: the model's log-probabilities are NaN" in line


@pytest.mark.parametrize("kind", ["onnx", "hf", "ct2"])
def test_export_of_nonfinite_weights_is_one_line(kind: str, tmp_path: Path, capsys) -> None:
    """The verification's search raised NaNLogProbs through the command (a traceback, exit 1)."""
    pytest.importorskip({"onnx": "onnxruntime", "hf": "transformers", "ct2": "ctranslate2"}[kind])
    from modelport.cli import main

    folder = payloads.nonfinite_weight(tmp_path / "ckpt")
    assert main(["convert", str(folder), str(tmp_path / "port"), "--allow-nonfinite", "-q"]) == 0
    line = one_line_error(["export", kind, str(tmp_path / "port"), str(tmp_path / "out")], capsys)
    assert "cannot be verified after export: its log-probabilities are NaN" in line, line
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------
# bounded memory and time (child processes under RLIMIT_AS and a timeout)


BOMBS = {
    "bytearray(3e9)": (payloads.bytearray_bomb, "calls `bytearray` with a size"),
    "zip bomb 1 GiB": (lambda d: payloads.zip_bomb(d, inflated=1024**3), "decompressed size of its compressed"),
    "billion laughs cfg": (payloads.laughs_cfg, "number of values in its configuration"),
    "200000 layers": (payloads.many_layers, "the options say 200000 encoder layers, but the weights hold 3"),
}
MAX_RSS = 1024**3  # modelport with torch imported needs a few hundred MB


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bombs")
    return {name: make(root / name.replace(" ", "_")) for name, (make, _) in BOMBS.items()}


@pytest.mark.parametrize("name", list(BOMBS))
@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_resource_bombs_are_refused_within_limits(tmp_path: Path, bombs: dict[str, Path], name: str,
                                                  command: str) -> None:
    work = tmp_path / "cwd"
    work.mkdir()
    argv = [command, str(bombs[name])] + ([str(work / "out")] if command == "convert" else [])
    code, err, seconds, rss = run_limited(argv, work)
    line = assert_one_line_exit_2(code, err)
    assert BOMBS[name][1] in line
    assert list(work.iterdir()) == [], "the refused command left files behind"
    assert seconds < TIMEOUT and rss < MAX_RSS, (seconds, rss)


def test_limits_are_typed() -> None:
    assert issubclass(ResourceLimitError, CorruptCheckpointError)


def test_convert_writes_no_folder_the_other_commands_refuse(tmp_path: Path, capsys) -> None:
    """max_source_positions 10**12 converted (exit 0) into a folder every other command refused."""
    import shutil

    import torch

    from modelport.converters.safe_pickle import safe_torch_load
    from tests.helpers.cli import one_line_error
    from tests.helpers.paths import DEFAULT_MODEL

    source = tmp_path / "big"
    shutil.copytree(DEFAULT_MODEL, source)
    checkpoint = safe_torch_load(str(DEFAULT_MODEL / "model.pt"))  # mapped: not the file about to be rewritten
    model = checkpoint["cfg"]["model"]
    if isinstance(model, dict):
        model["max_source_positions"] = 10**12
    else:
        model.max_source_positions = 10**12
    torch.save(checkpoint, source / "model.pt")
    line = one_line_error(["convert", str(source), str(tmp_path / "out")], capsys)
    assert "its port would not be a valid folder" in line and "max_source_positions" in line
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["big"]
