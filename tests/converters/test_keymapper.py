"""KeyMapper: the one name-table machinery every converter maps weights with."""

from __future__ import annotations

import re

import pytest
import torch

from modelport.converters.base import KeyMapper, Rule, drop, split, transpose
from modelport.errors import WeightMappingError


def test_placeholder_rule_renames_and_transforms() -> None:
    w = torch.arange(6.0).reshape(2, 3)
    mapper = KeyMapper({"enc.3.kernel": w}, {"enc.{}.kernel": Rule("encoder.layers.{}.w", transpose)})
    (name, t), = list(mapper.apply())
    assert name == "encoder.layers.3.w"
    assert t.tolist() == [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    mapper.check("src")  # nothing left over


def test_split_fills_several_slots_with_views() -> None:
    fused = torch.arange(12.0).reshape(6, 2)
    table = {"l.{}.in_proj": Rule(("l.{}.q", "l.{}.k", "l.{}.v"), split(3))}
    out = dict(KeyMapper({"l.0.in_proj": fused}, table).apply())
    assert list(out) == ["l.0.q", "l.0.k", "l.0.v"]
    assert out["l.0.k"].tolist() == [[4.0, 5.0], [6.0, 7.0]]
    assert out["l.0.q"].data_ptr() == fused.data_ptr()  # a view, not a copy


def test_one_tensor_fills_several_slots_as_aliases() -> None:
    pos = torch.ones(4, 2)
    out = dict(KeyMapper({"Wpos": pos}, {"Wpos": Rule(("enc.pos", "dec.pos"))}).apply())
    assert out["enc.pos"] is pos and out["dec.pos"] is pos


def test_concatenation_of_several_source_keys() -> None:
    state = {"a.0": torch.zeros(1, 2), "b.0": torch.ones(1, 2)}
    table = {"a.{}": Rule("ab.{}", lambda a, b: torch.cat([a, b]), also=("b.{}",))}
    mapper = KeyMapper(state, table)
    out = dict(mapper.apply())
    assert out["ab.0"].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert mapper.leftovers() == []


def test_missing_concatenated_key_is_a_problem() -> None:
    mapper = KeyMapper({"a.0": torch.zeros(1)}, {"a.{}": Rule("ab.{}", torch.cat, also=("b.{}",))})
    assert list(mapper.apply()) == []
    with pytest.raises(WeightMappingError, match="`b.0` is missing"):
        mapper.check("src")


def test_drop_rule_records_its_reason() -> None:
    state = {"x_slot_vr": torch.zeros(1), "old.version": torch.zeros(1)}
    table = {re.compile(r".*_slot_(v|vr)"): drop("optimizer state"), "old.version": None}
    mapper = KeyMapper(state, table, {"old.version": "a format number"})
    assert list(mapper.apply()) == []
    assert mapper.dropped == {"x_slot_vr": "optimizer state", "old.version": "a format number"}


def test_regex_groups_and_numbers_counted_from_first_index() -> None:
    state = {"encoder_l1_W": torch.zeros(1), "encoder_l0_W": torch.zeros(1),
             "block_007/wo": torch.zeros(1)}
    table = {"encoder_l{}_W": "encoder.layers.{}.w", re.compile(r"block_(\d+)/(w\w)"): "block.{0}.{1}"}
    mapper = KeyMapper(state, table, first_index=1)
    # Marian-style numbering from 1: layer 1 is unified layer 0, layer 0 matches nothing
    out = dict(mapper.apply())
    assert "encoder.layers.0.w" in out and "block.6.wo" in out
    assert mapper.leftovers() == ["encoder_l0_W"]


def test_numbers_as_written_without_first_index() -> None:
    out = dict(KeyMapper({"l.01.w": torch.zeros(1)}, {"l.{}.w": "layers.{}.w"}).apply())
    assert list(out) == ["layers.01.w"]


def test_computed_target_none_leaves_the_key_unmatched() -> None:
    def target(index: str) -> str | None:
        return f"ffn.{index}" if int(index) < 2 else None

    mapper = KeyMapper({"W1": torch.zeros(1), "W5": torch.zeros(1)}, {"W{}": Rule(target)})
    assert [n for n, _ in mapper.apply()] == ["ffn.1"]
    assert mapper.leftovers() == ["W5"]


def test_leftovers_and_problems_are_reported_together() -> None:
    mapper = KeyMapper({"known": torch.zeros(1), "odd.1": torch.zeros(1), "odd.2": torch.zeros(1)},
                       {"known": "k"}, unmatched="tensor `{}` has no slot in the unified model")
    list(mapper.apply())
    mapper.problems.append("something else is wrong")
    with pytest.raises(WeightMappingError) as info:
        mapper.check("ckpt.pt")
    assert info.value.source == "ckpt.pt"
    assert info.value.problems == ["something else is wrong", "tensor `odd.1` has no slot in the unified model",
                                   "tensor `odd.2` has no slot in the unified model"]


def test_taken_keys_are_not_mapped_again() -> None:
    mapper = KeyMapper({"a": torch.zeros(1), "b": torch.zeros(1)}, {"a": "x", "b": "y"})
    mapper.take("a")
    mapper.drop("b", "an alias")
    assert list(mapper.apply()) == []
    assert mapper.dropped == {"b": "an alias"}
    mapper.check("src")
