"""`--help` tells the truth: every command's help exits 0, every positional
argument is explained, defaults are shown (the batch sizes are the ones the
code uses when none is given), `--format` lists the registered converters and
convert/translate/validate end with examples."""

from __future__ import annotations

import argparse
import inspect

import pytest

from modelport.cli import build_parser


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([command, "--help"])
    assert info.value.code == 0
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("command", sorted(_subparsers()))
def test_help_exits_0_and_explains_every_argument(command: str, capsys) -> None:
    text = _help(command, capsys)
    assert text.startswith(f"usage: modelport {command}")
    for action in _subparsers()[command]._actions:
        if not action.option_strings:
            assert action.help, f"{command}: positional `{action.dest}` has no help"
        elif action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in (action.help or ""), f"{command} {action.option_strings[0]}: default not shown"


def test_batch_size_defaults_are_the_ones_used(capsys) -> None:
    from modelport.generation.translate import make_batches
    from modelport.validators.run import validate

    used = len(make_batches([3] * 100)[0])  # what translate does without --batch-size/--max-tokens
    assert used == 32
    assert f"--batch-size BATCH_SIZE sentences per batch, batches sorted by length (default: {used};" \
        in _help("translate", capsys)
    from modelport.validators import run

    # None: run.VALIDATE_BATCH_SIZE, except on a Marian port, which refuses a batch size (Marian's batching)
    assert inspect.signature(validate).parameters["batch_size"].default is None
    used = run.VALIDATE_BATCH_SIZE
    assert used == 16
    assert f"(default: {used})" in _help("validate", capsys)


def test_format_lists_the_registered_converters(capsys) -> None:
    from modelport.converters.base import converters

    names = sorted(converters())
    assert {"fairseq", "marian", "t5"} <= set(names)
    for command in ("convert", "inspect"):
        assert f"source format, one of: {', '.join(names)} (default: detected from SOURCE)" in _help(command, capsys)


@pytest.mark.parametrize("command", ["convert", "translate", "validate"])
def test_examples(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    examples = out[out.index("examples:\n"):].splitlines()[1:]
    assert len(examples) >= 2 and all(f"modelport {command} " in line for line in examples if line)


def _export_targets() -> dict[str, argparse.ArgumentParser]:
    export = _subparsers()["export"]
    action = next(a for a in export._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_export_help_lists_the_targets(capsys) -> None:
    text = _help("export", capsys)
    assert text.startswith("usage: modelport export [-h] TARGET ...")
    assert sorted(_export_targets()) == ["ct2", "hf", "onnx"]
    assert "hf Hugging Face transformers" in text and "onnx onnxruntime" in text and "ct2 CTranslate2" in text
    assert "--opset N" not in text and "--allow-approximate" not in text  # listed by each target only
    assert "--quantization TYPE" not in text


@pytest.mark.parametrize("target, own, other", [("hf", "--allow-approximate", "--opset"),
                                                ("onnx", "--opset", "--allow-approximate"),
                                                ("ct2", "--quantization", "--opset")])
def test_export_target_help_lists_only_its_own_options(target: str, own: str, other: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["export", target, "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"usage: modelport export {target} ")
    assert own in text and other not in text
    for flag in ("--force", "--data FILE", "--no-verify", "--json"):
        assert flag in text
    for action in _export_targets()[target]._actions:
        if not action.option_strings:
            assert action.help, f"export {target}: positional `{action.dest}` has no help"
