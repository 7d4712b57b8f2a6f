"""The restricted checkpoint reader never runs code named by the pickle."""

from __future__ import annotations

import argparse
import os
import pickle

import pytest
import torch

from bridge.vc.torchfile import CheckpointError, Opaque, load_torch_file, plain


class _Evil:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_foreign_callables_become_inert(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.ones(2)}, "payload": _Evil(str(marker)),
                "args": argparse.Namespace(normalize=True, layers=3)}, path)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_torch_file(path)  # default: weights only
    ckpt = load_torch_file(path, allow_opaque=True)
    assert not marker.exists()
    assert torch.equal(ckpt["model"]["w"], torch.ones(2))
    assert isinstance(ckpt["payload"], Opaque) and ckpt["payload"].opaque_class.endswith(".system")
    assert plain(ckpt["args"]) == {"normalize": True, "layers": 3}


def test_plain_weights_load_weights_only(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save({"a": torch.zeros(3)}, path)
    assert load_torch_file(path)["a"].shape == (3,)


def test_unreadable_files(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_torch_file(tmp_path / "none.pt")
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_torch_file(empty)
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"x": 1}, protocol=2))
    with pytest.raises(CheckpointError, match="raw.pkl"):
        load_torch_file(raw, allow_opaque=True)


def test_legacy_format_with_foreign_objects(tmp_path):
    path = tmp_path / "legacy.pt"
    torch.save({"model": {"w": torch.arange(4, dtype=torch.float16)}, "args": argparse.Namespace(a=1)},
               path, _use_new_zipfile_serialization=False)
    ckpt = load_torch_file(path, allow_opaque=True)
    assert ckpt["model"]["w"].dtype == torch.float16 and ckpt["model"]["w"].tolist() == [0, 1, 2, 3]
    assert plain(ckpt["args"]) == {"a": 1}


@pytest.mark.parametrize("allow_opaque", [False, True])
def test_text_is_not_a_torch_file(tmp_path, allow_opaque):
    """Regression: ``h`` (a pasted URL) is a pickle memo lookup that raised a bare KeyError."""
    path = tmp_path / "hubert_base.pt"
    path.write_bytes(b"https://huggingface.co/lj1995/VoiceConversionWebUI/resolve/main/hubert_base.pt\n")
    with pytest.raises(CheckpointError, match="hubert_base.pt: not a readable torch checkpoint"):
        load_torch_file(path, allow_opaque=allow_opaque)
