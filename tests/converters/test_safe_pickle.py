"""The restricted unpickler: data-only globals pass, omegaconf/fairseq objects
become inert data, everything else is refused by name."""

from __future__ import annotations

import argparse
import io
import pickle
from collections import OrderedDict

import pytest
import torch

from modelport.converters.safe_pickle import Inert, RestrictedUnpickler, safe_torch_load, to_plain
from modelport.errors import UnsafeCheckpointError


def _loads(obj, protocol=4):
    return RestrictedUnpickler(io.BytesIO(pickle.dumps(obj, protocol=protocol))).load()


@pytest.mark.parametrize("protocol", [2, 4])
def test_plain_data_round_trips(protocol: int) -> None:
    data = {"a": [1, 2.5, "x", None, True], "b": OrderedDict(c=(1, 2)), "s": {1, 2},
            "ns": argparse.Namespace(arch="transformer", lr=[0.1])}
    assert _loads(data, protocol) == data


@pytest.mark.parametrize("target", ["os.system", "builtins.eval", "subprocess.Popen", "builtins.getattr",
                                    "torch.storage._load_from_bytes", "builtins.__import__"])
def test_dangerous_globals_refused(target: str) -> None:
    module, name = target.rsplit(".", 1)
    payload = b"\x80\x02c" + module.encode() + b"\n" + name.encode() + b"\n."
    with pytest.raises(UnsafeCheckpointError) as info:
        RestrictedUnpickler(io.BytesIO(payload)).load()
    assert name in info.value.global_name


def test_omegaconf_becomes_plain_data(tmp_path) -> None:
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"model": {"arch": "transformer", "dims": [1, 2], "x": None},
                                      "task": {"source_lang": "en"}})
    torch.save({"cfg": cfg, "model": {"w": torch.ones(2)}}, tmp_path / "c.pt")
    loaded = safe_torch_load(tmp_path / "c.pt")
    assert isinstance(loaded["cfg"], Inert)
    assert to_plain(loaded["cfg"]) == {"model": {"arch": "transformer", "dims": [1, 2], "x": None},
                                       "task": {"source_lang": "en"}}
    assert torch.equal(loaded["model"]["w"], torch.ones(2))


def test_inert_objects_never_run_code() -> None:
    # a fairseq class in the pickle is recorded, not imported or called
    payload = (b"\x80\x02cfairseq.logging.meters\nAverageMeter\n)\x81}X\x03\x00\x00\x00val"
               b"K\x05sb.")
    obj = RestrictedUnpickler(io.BytesIO(payload)).load()
    assert isinstance(obj, Inert) and obj.qualname == "fairseq.logging.meters.AverageMeter"
    assert obj.state == {"val": 5}
