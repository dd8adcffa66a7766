"""``validate --reference`` is checked against ``conversion.json`` before
anything heavy is loaded: the wrong model is exit 2 with one line naming the
differing file and both (shortened) hashes, not a tensor-size traceback after
the reference framework ran; the same content in another folder (or a renamed
checkpoint) still validates. ``--semantics`` that validate cannot compare for
the port's format is refused at once, naming the one it can."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import modelport
from modelport.errors import InvalidInputError
from modelport.validators.provenance import check_reference
from tests.helpers.cli import main, one_line_error
from tests.helpers.paths import CORPUS, ROOT
from tests.helpers.requires import requires

OTHER_FAIRSEQ = ROOT / "assets" / "fixture-prenorm"  # another fairseq model, same file names
MARIAN = ROOT / "tests" / "data" / "marian"


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "in.en"
    path.write_text("\n".join((CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:3]) + "\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def nothing_heavy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if validate loads the port (let alone the reference framework)."""
    import modelport.validators.run as run

    def refuse(*args, **kwargs):
        raise AssertionError("validate loaded a model before refusing the input")

    monkeypatch.setattr(run, "load", refuse)


@pytest.mark.parametrize("form", ["directory", "file"])
def test_another_fairseq_model_is_refused_before_loading(ported_default, default_model_dir, data, nothing_heavy,
                                                         capsys, form: str) -> None:
    reference = OTHER_FAIRSEQ if form == "directory" else OTHER_FAIRSEQ / "model.pt"
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(reference), "--data", str(data)],
                          capsys)
    assert "`model.pt`" in line and "is not the checkpoint" in line
    assert _sha(OTHER_FAIRSEQ / "model.pt")[:12] in line and _sha(default_model_dir / "model.pt")[:12] in line
    assert _sha(default_model_dir / "model.pt") not in line  # shortened


def test_same_content_elsewhere_or_renamed_passes_the_check(ported_default, default_model_dir, tmp_path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(default_model_dir, copy)
    conversion = ported_default.conversion
    check_reference(conversion, str(copy), ported_default.path)
    check_reference(conversion, str(copy / "model.pt"), ported_default.path)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    shutil.copy(default_model_dir / "model.pt", renamed / "checkpoint_best.pt")
    check_reference(conversion, str(renamed / "checkpoint_best.pt"), ported_default.path)
    (copy / "dict.de.txt").write_text("other\n", encoding="utf-8")  # one tokenizer file differs
    with pytest.raises(InvalidInputError, match="`dict.de.txt` has sha256"):
        check_reference(conversion, str(copy), ported_default.path)


@requires("fairseq")
def test_same_content_in_another_directory_validates(ported_default, default_model_dir, data, tmp_path) -> None:
    copy = tmp_path / "elsewhere"
    shutil.copytree(default_model_dir, copy)
    assert main(["validate", str(ported_default.path), "--reference", str(copy), "--data", str(data),
                 "--only", "beam", "--report", str(tmp_path / "report")]) == 0


def test_another_marian_model_is_refused(tmp_path, data, nothing_heavy, capsys) -> None:
    modelport.convert(str(MARIAN / "post_tiedall_swish"), tmp_path / "ported")
    line = one_line_error(["validate", str(tmp_path / "ported"), "--reference", str(MARIAN / "post_untied_relu"),
                           "--data", str(data)], capsys)
    npz = "opus.spm400-spm440.transformer-align.model1.npz.best-perplexity.npz"
    assert f"`{npz}`" in line
    assert _sha(MARIAN / "post_untied_relu" / npz)[:12] in line
    assert _sha(MARIAN / "post_tiedall_swish" / npz)[:12] in line


@requires("transformers")
def test_another_t5_folder_is_refused(tmp_path, data, nothing_heavy, capsys) -> None:
    from tests.converters.test_t5_parity import build_hf_t5

    build_hf_t5(tmp_path / "a", "v1.1", seed=1)
    build_hf_t5(tmp_path / "b", "v1.1", seed=2)
    modelport.convert(str(tmp_path / "a"), tmp_path / "ported")
    capsys.readouterr()  # transformers' save progress bars
    line = one_line_error(["validate", str(tmp_path / "ported"), "--reference", str(tmp_path / "b"),
                           "--data", str(data)], capsys)
    assert "`model.safetensors`" in line
    assert _sha(tmp_path / "b" / "model.safetensors")[:12] in line


def test_semantics_validate_cannot_compare_is_refused_at_once(ported_default, data, nothing_heavy, capsys) -> None:
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(ported_default.path),
                           "--data", str(data), "--semantics", "hf"], capsys)
    assert "`--semantics hf`" in line and "fairseq port" in line and "fairseq ports: fairseq" in line
    # marian is a choice (its help says Marian ports take it): argparse refused it as no choice at all
    line = one_line_error(["validate", str(ported_default.path), "--reference", str(ported_default.path),
                           "--data", str(data), "--semantics", "marian"], capsys)
    assert "`--semantics marian`" in line and "marian ports: marian" in line


def test_port_without_hashes_is_not_checked(ported_default, tmp_path) -> None:
    """A folder whose conversion.json records no sha256 (older or hand-made): nothing to compare with."""
    conversion = json.loads(json.dumps(ported_default.conversion))
    for f in conversion["source_files"]:
        del f["sha256"]
    check_reference(conversion, str(OTHER_FAIRSEQ), ported_default.path)
