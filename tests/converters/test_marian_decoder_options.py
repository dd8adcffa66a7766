"""decoder.yml's decoding options: each honoured (recorded and used by ``translate``), ignored on purpose
(harmless) or refused by name at convert time (issue #19).

Built from a copy of tests/data/marian-trained/post_sep_tied whose decoder.yml is edited; the reference
is ``pymarian decode -c decoder.yml`` on that same directory, so both read the same config.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sentencepiece
import yaml

import modelport
from modelport.cli import main
from tests.helpers.cli import one_line_error
from tests.helpers.paths import CORPUS, DATA

MODEL = DATA / "marian-trained" / "post_sep_tied"
LEX = DATA / "marian-shortlist" / "post_sep_tied.lex.s2t"
N_LINES = 12
# a shortlist that matters on these lines: no frequent words, the 3 best translations above 0.1
SHORTLIST = ["lex.s2t", 0, 3, 0.1]
# ignored on purpose: threads, memory, logging, devices, an older version's key, float32 precision, and a
# model option special:model.yml holds (Marian takes the model's)
HARMLESS = {"dim-emb": 64, "quiet": True, "quiet-translation": True, "cpu-threads": 1, "workspace": 512,
            "log-level": "warn", "devices": [0], "version": "v1.12.42", "precision": ["float32"], "word-scores": False,
            "seed": 1}


def _lines() -> list[str]:
    return (CORPUS / "test.en").read_text(encoding="utf-8").splitlines()[:N_LINES]


def _model_dir(tmp_path: Path, **options: Any) -> Path:
    """A copy of the model with the shortlist beside it and ``options`` added to its decoder.yml."""
    directory = tmp_path / "model"
    shutil.copytree(MODEL, directory)
    shutil.copyfile(LEX, directory / "lex.s2t")
    decoder = yaml.safe_load((directory / "decoder.yml").read_text(encoding="utf-8"))
    decoder.update({k.replace("_", "-"): v for k, v in options.items()})
    (directory / "decoder.yml").write_text(yaml.safe_dump(decoder), encoding="utf-8")
    return directory


def _convert(directory: Path, out: Path) -> None:
    assert main(["convert", str(directory), str(out), "--quiet"]) == 0


def test_recorded_shortlist_and_alignment_equal_pymarian(tmp_path: Path, capsys) -> None:
    pytest.importorskip("pymarian")
    from modelport.validators.references.marian import MarianReference

    directory = _model_dir(tmp_path, shortlist=SHORTLIST, alignment="hard", **HARMLESS)
    out = tmp_path / "port"
    _convert(directory, out)
    assert (out / "tokenizer" / "lex.s2t").read_bytes() == LEX.read_bytes()
    gen = json.loads((out / "generation_config.json").read_text(encoding="utf-8"))
    assert gen["shortlist"][:3] == ["tokenizer/lex.s2t", 0, 3] and gen["alignment"] == "hard"
    ref = MarianReference(directory).decode(_lines())  # decoder.yml's shortlist, alignment and beam
    assert all(r[0].alignment for r in ref)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["translate", str(out), "-i", str(src), "--quiet"]) == 0  # printed by default, as marian-decoder
    assert capsys.readouterr().out.splitlines() == [f"{r[0].text} ||| {r[0].alignment}" for r in ref]
    # the case can fail: without the recorded shortlist the port translates otherwise
    ported = modelport.load(out)
    ported.generation_config.pop("shortlist")
    assert [h[0].text for h in ported.translate(_lines())] != [r[0].text for r in ref]
    # an explicit --shortlist / --alignment overrides the folder's
    assert main(["translate", str(out), "-i", str(src), "--quiet", "--alignment", "soft", "--shortlist",
                 str(LEX), "50", "10"]) == 0
    ref = MarianReference(directory).decode(_lines(), shortlist=[str(LEX), 50, 10], alignment="soft")
    got = capsys.readouterr().out.splitlines()
    assert [line.split(" ||| ")[0] for line in got] == [r[0].text for r in ref]
    assert all("," in line.split(" ||| ")[1] for line in got)  # soft rows


def test_allow_unk_is_recorded_and_used(tmp_path: Path) -> None:
    pytest.importorskip("pymarian")
    from modelport.validators.references.marian import MarianReference

    directory = _model_dir(tmp_path, allow_unk=True)
    # <unk> made likely (its logit bias raised), so that allowing it changes the n-best lists
    npz = directory / "model.npz"
    with np.load(npz) as f:
        arrays = dict(f)
    unk = sentencepiece.SentencePieceProcessor(model_file=str(directory / "target.spm")).unk_id()
    arrays["decoder_ff_logit_out_b"][..., unk] += 4.0
    np.savez(npz, **arrays)
    ported = modelport.convert(str(directory), tmp_path / "port")
    assert ported.generation_config["allow_unk"] is True and ported.config.unk_token_id == unk
    ref = [[h.text for h in r] for r in MarianReference(directory).decode(_lines(), beam_size=6)]
    assert [[h.text for h in o] for o in ported.translate(_lines(), beam_size=6, n_best=True)] == ref
    # the case can fail: with <unk> suppressed the port's n-best lists differ from Marian's
    suppressed = ported.translate(_lines(), beam_size=6, n_best=True, allow_unk=False)
    assert [[h.text for h in o] for o in suppressed] != ref
    plain = modelport.convert(str(MODEL), tmp_path / "plain")
    assert plain.generation_config["allow_unk"] is False


@pytest.mark.parametrize(("key", "value"), [
    ("precision", ["float16"]), ("fp16", True), ("gemm-type", "packed8avx2"), ("skip-cost", True),
    ("output-sampling", ["topk", 10, 0.1]), ("no-spm-decode", True), ("force-decode", True),
    ("output-approx-knn", [100, 1024]), ("ignore-model-config", True),
    ("gemm-precision", "int8shiftAlphaAll"), ("max-length-break", 128),  # Bergamot's, not Marian 1.12's
])
def test_refused_keys_exit_2_naming_the_key(key: str, value: Any, tmp_path: Path, capsys) -> None:
    directory = _model_dir(tmp_path, **{key: value})
    line = one_line_error(["convert", str(directory), str(tmp_path / "port")], capsys)
    assert f"--{key}" in line, line


@pytest.mark.parametrize(("key", "value", "said"), [
    ("normalize", -1, "`--normalize` must be a number >= 0 that a float32 holds (Marian reads it as one), but is -1"),
    ("word-penalty", 1e39, "`--word-penalty` must be a number that a float32 holds"),
    ("word-penalty", -10**400, "`--word-penalty` must be a number that a float32 holds"),  # was an OverflowError
    ("max-length-factor", 1e300, "`--max-length-factor` must be a number > 0 that a float32 holds"),
    ("max-length-factor", 0, "`--max-length-factor` must be a number > 0"),
])
def test_values_translate_refuses_are_refused_at_convert(key: str, value: Any, said: str, tmp_path: Path,
                                                         capsys) -> None:
    """They converted, and then every translate refused the folder's own defaults."""
    directory = _model_dir(tmp_path, **{key: value})
    line = one_line_error(["convert", str(directory), str(tmp_path / "port")], capsys)
    assert said in line, line
    assert not (tmp_path / "port").exists()


def test_model_option_the_model_lacks_is_refused(tmp_path: Path, capsys) -> None:
    """A model option in decoder.yml that special:model.yml lacks would build another model in Marian."""
    directory = _model_dir(tmp_path, **{"best-deep": True, "right-left": False})
    line = one_line_error(["convert", str(directory), str(tmp_path / "port")], capsys)
    assert "--best-deep" in line and "--right-left" not in line


@pytest.mark.parametrize("where", ["parent", "symlink", "absolute"])
def test_shortlist_outside_the_directory_is_refused(where: str, tmp_path: Path, capsys) -> None:
    outside = tmp_path / "outside.lex.s2t"
    shutil.copyfile(LEX, outside)
    name = {"parent": "../outside.lex.s2t", "symlink": "link.s2t", "absolute": str(outside)}[where]
    directory = _model_dir(tmp_path, shortlist=[name, 0, 3])
    if where == "symlink":
        (directory / "link.s2t").symlink_to(outside)
    line = one_line_error(["convert", str(directory), str(tmp_path / "port")], capsys)
    assert "outside the model directory" in line


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xf5\x17\x34\x01\xd5\x48\x1a\xf1" + bytes(64), "binary shortlist"),
    (b"a b\n", "TARGET SOURCE PROB"),
])
def test_bad_shortlist_file_is_refused(content: bytes, expected: str, tmp_path: Path, capsys) -> None:
    directory = _model_dir(tmp_path, shortlist=["lex.s2t", 0, 3])
    (directory / "lex.s2t").write_bytes(content)
    line = one_line_error(["convert", str(directory), str(tmp_path / "port")], capsys)
    assert expected in line, line


def test_folder_shortlist_escaping_the_folder_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "port"
    _convert(_model_dir(tmp_path, shortlist=SHORTLIST), out)
    gen_path = out / "generation_config.json"
    gen = json.loads(gen_path.read_text(encoding="utf-8"))
    shutil.copyfile(LEX, tmp_path / "stolen.s2t")
    gen["shortlist"] = ["../stolen.s2t", 0, 3]
    gen_path.write_text(json.dumps(gen), encoding="utf-8")
    src = tmp_path / "in.txt"
    src.write_text("Hello world\n", encoding="utf-8")
    line = one_line_error(["translate", str(out), "-i", str(src)], capsys)
    assert "must name a file inside the folder" in line


def test_bad_alignment_value_is_refused(tmp_path: Path, capsys) -> None:
    line = one_line_error(["convert", str(_model_dir(tmp_path, alignment="diagonal")), str(tmp_path / "port")],
                          capsys)
    assert "`alignment` must be hard, soft or a threshold number > 0" in line


def test_model_yml_decoding_keys_win_over_decoder_yml(tmp_path: Path) -> None:
    """Marian lays the model's special:model.yml over decoder.yml (Config::loadModelParameters): a
    ``beam-size: 1`` there beats decoder.yml's 4, in Marian and in the port."""
    pytest.importorskip("pymarian")
    import numpy as np

    from modelport.validators.references.marian import MarianReference

    directory = _model_dir(tmp_path)
    with np.load(directory / "model.npz") as f:
        arrays = {k: f[k] for k in f.files}
    text = "beam-size: 1\n" + bytes(arrays["special:model.yml"]).rstrip(b"\0").decode("utf-8")
    arrays["special:model.yml"] = np.frombuffer(text.encode("utf-8") + b"\0", dtype=np.int8)
    np.savez(directory / "model.npz", **arrays)
    ported = modelport.convert(str(directory), tmp_path / "port")
    assert ported.generation_config["beam_size"] == 1
    ref = MarianReference(directory).decode(_lines())
    assert {len(r) for r in ref} == {1}  # Marian's n-best list: one entry, the beam of the model's yml
    assert [h[0].text for h in ported.translate(_lines())] == [r[0].text for r in ref]


def test_none_turns_the_recorded_shortlist_and_alignment_off(tmp_path: Path, capsys) -> None:
    """``--shortlist none --alignment none``: the port decodes as one converted without them
    (the full vocabulary, no `` ||| `` alignment), and the API takes "none" alike."""
    recorded, plain = tmp_path / "recorded", tmp_path / "plain"
    _convert(_model_dir(tmp_path, shortlist=SHORTLIST, alignment="hard"), recorded)
    shutil.rmtree(tmp_path / "model")
    _convert(_model_dir(tmp_path), plain)
    src = tmp_path / "in.txt"
    src.write_text("\n".join(_lines()) + "\n", encoding="utf-8")
    outputs = []
    for folder, extra in ((plain, []), (recorded, ["--shortlist", "none", "--alignment", "none"]), (recorded, [])):
        capsys.readouterr()
        assert main(["translate", str(folder), "-i", str(src), "--quiet", *extra]) == 0
        outputs.append(capsys.readouterr().out.splitlines())
    assert outputs[1] == outputs[0]
    assert outputs[2] != outputs[0] and all(" ||| " in line for line in outputs[2])  # the case can fail
    texts = [h[0].text for h in modelport.load(recorded).translate(_lines(), shortlist="none", alignment="none")]
    assert texts == outputs[0]
