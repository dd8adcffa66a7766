"""One error line per torchrun job (cli.console.report_error): before the
process group starts rank 0 says an error and the other ranks wait (torchrun
stops them); a rank that still gets to say one names itself."""

from __future__ import annotations

import importlib

import pytest

console = importlib.import_module("modelport.cli.console")  # `modelport.cli.console` is also a function's name


@pytest.fixture
def no_wait(monkeypatch):
    monkeypatch.setattr(console, "RANK_ERROR_WAIT", 0.0)


def test_without_torchrun_the_line_is_plain(monkeypatch, capsys) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("RANK", "3")  # no WORLD_SIZE: not a torchrun job
    assert console.report_error("bad\ninput", 2) == 2
    assert capsys.readouterr().err == "modelport: error: bad\\ninput\n"


def test_rank_0_says_it_at_once(monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setattr(console, "RANK_ERROR_WAIT", 1e9)  # rank 0 never waits
    assert console.report_error("bad input", 2) == 2
    assert capsys.readouterr().err == "modelport: error: bad input\n"


def test_another_rank_waits_then_names_itself(monkeypatch, capsys, no_wait) -> None:
    waited = []
    monkeypatch.setattr(console.time, "sleep", waited.append)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert console.report_error("bad input", 2) == 2
    assert waited == [0.0]
    assert capsys.readouterr().err == "modelport: error: rank 1: bad input\n"
