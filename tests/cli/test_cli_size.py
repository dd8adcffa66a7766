"""`convert --shard-size` reads sizes as huggingface_hub and transformers do:
decimal units (2GB = 2*10**9 bytes), binary units (2GiB = 2*2**30), bare bytes."""

from __future__ import annotations

import pytest

from modelport.cli import build_parser


@pytest.mark.parametrize("text, expected", [
    ("2GB", 2 * 10**9), ("500MB", 500 * 10**6), ("5KB", 5000), ("1.5GB", 1_500_000_000),
    ("2GiB", 2 * 2**30), ("512MiB", 512 * 2**20), ("1048576", 1048576), ("2gb", 2 * 10**9),
])
def test_shard_size_units(text: str, expected: int) -> None:
    args = build_parser().parse_args(["convert", "src", "out", "--shard-size", text])
    assert args.shard_size == expected


@pytest.mark.parametrize("text", ["2XB", "GB", "0", "-1GB", "lots"])
def test_bad_shard_size_is_one_line(text: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:  # argparse's type check, through the one-line _Parser.error
        build_parser().parse_args(["convert", "src", "out", f"--shard-size={text}"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("modelport: error: `--shard-size` must be a size in bytes")
    assert repr(text) in lines[0]


def test_shard_size_help_says_how_sizes_read(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["convert", "--help"])
    assert info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "2GB = 2*10**9 bytes" in help_text and "2GiB = 2*2**30" in help_text
