"""The README's examples run as written: the Python API block (extracted
verbatim and executed, twice: a second run must not trip over the first's
output) and the command-line examples on the embedded model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import one_line_error
from tests.helpers.paths import DEFAULT_MODEL, ROOT

README = ROOT / "README.md"
CLI_MARKER = "On the embedded model (`tests/test_readme.py` runs these):"


def _python_example() -> str:
    m = re.search(r"^## Python API\n\n```python\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert m, "README.md has no ```python block under '## Python API'"
    return m.group(1)


def _cli_examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert CLI_MARKER in text, "README.md lost its command-line examples"
    m = re.search(r"```bash\n(.*?)```", text[text.index(CLI_MARKER):], re.S)
    assert m
    return [line for line in m.group(1).splitlines() if line.strip()]


def _workdir(tmp_path: Path) -> Path:
    """A working directory where `assets/` is the repository's (read-only use)."""
    (tmp_path / "assets").symlink_to(ROOT / "assets", target_is_directory=True)
    return tmp_path


def _target_vocab_size() -> int:
    # fairseq's Dictionary: <s>, <pad>, </s>, <unk>, then one entry per line of dict.<tgt>.txt
    return 4 + sum(1 for line in (DEFAULT_MODEL / "dict.de.txt").read_text(encoding="utf-8").splitlines() if line)


def test_python_example_runs_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(_workdir(tmp_path))
    code = compile(_python_example(), "README.md:python", "exec")
    for _ in range(2):  # the second run meets the first one's ported/en-de
        ns: dict = {}
        exec(code, ns)
    assert (tmp_path / "ported" / "en-de" / "model.safetensors").is_file()
    hyp = ns["nbest"][0][0]
    assert len(ns["nbest"][0]) >= 1 and hyp["tokens"][-1] == 2  # fairseq's </s>
    logits, logprobs = ns["logits"], ns["logprobs"]
    assert tuple(logits.shape) == (1, len(hyp["tokens"]), _target_vocab_size())
    assert tuple(logprobs.shape) == (1, 1, _target_vocab_size())
    # the incremental path agrees with the full forward pass at the first step
    assert torch.allclose(logprobs[0, 0], torch.log_softmax(logits[0, 0], -1), atol=1e-5)
    # the best hypothesis' first token is what the first step likes best up to the beam
    assert hyp["tokens"][0] in logprobs[0, 0].topk(5).indices.tolist()


def test_output_exists_names_the_api_keyword_or_the_flag(tmp_path: Path, capsys) -> None:
    import modelport
    from modelport.errors import OutputExistsError

    out = tmp_path / "port"
    out.mkdir()
    with pytest.raises(OutputExistsError) as info:
        modelport.convert(str(DEFAULT_MODEL), out)
    assert "force=True" in str(info.value) and "--force" not in str(info.value)
    line = one_line_error(["convert", str(DEFAULT_MODEL), str(out)], capsys)
    assert "already exists" in line and "--force" in line and "force=True" not in line


def test_cli_examples_run_on_the_embedded_model(tmp_path: Path) -> None:
    work = _workdir(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    commands = _cli_examples()
    for needed in ("inspect", "convert", "tokenize", "translate", "validate", "quantize", "card"):
        assert any(f"modelport {needed} " in c for c in commands), needed
    outputs = []
    for command in commands:
        r = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=work, env=env, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"{command}\n{r.stderr[-2000:]}"
        outputs.append(r.stdout)
    by_command = dict(zip(commands, outputs))
    translate = next(out for c, out in by_command.items() if "modelport translate" in c)
    lines = translate.splitlines()
    assert len(lines) == 2 and all(re.fullmatch(r"-?\d+\.\d{6}\t.+", line) for line in lines)
    validate = next(out for c, out in by_command.items() if "modelport validate" in c)
    assert re.search(r"^parity:\s+passed$", validate, re.M)
    assert (work / "ported" / "en-de" / "parity_report.md").is_file()
    assert (work / "ported" / "en-de-int8" / "pass_report.json").is_file()
    assert (work / "ported" / "en-de-int8" / "README.md").is_file()
