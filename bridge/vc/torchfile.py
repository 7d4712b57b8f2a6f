"""Reading ``torch.save`` files without running code from them.

Two kinds of file reach the voice stage:

* pure tensor containers (``rmvpe.pt``, Hugging Face ``pytorch_model.bin``, RVC voice
  ``.pth``): ``torch.load(weights_only=True)`` reads them and is all we use;
* fairseq checkpoints (``hubert_base.pt``), which also pickle the training configuration as
  ``argparse.Namespace`` / ``omegaconf.DictConfig`` objects, enums, and sometimes optimizer
  and meter objects from fairseq itself. ``weights_only=True`` refuses those globals, and
  ``weights_only=False`` would import fairseq/omegaconf (absent here) and run whatever
  ``__reduce__`` the file names.

For the second kind :func:`load_torch_file` falls back to :class:`_RestrictedUnpickler`: the
globals that tensors need (the same rebuild functions the weights-only unpickler trusts) and
a few inert builtins resolve normally; **every other global becomes a freshly made inert
placeholder class** (:class:`Opaque`), so that an object of an unknown class turns into a
plain container of its pickled state and a call of an unknown callable turns into a record
of its arguments. Nothing outside the allowlist is imported or called. :func:`plain` then
turns such placeholders (including omegaconf's ``_content``/``_val`` node structure) into
ordinary ``dict``/``list``/scalars for reading the configuration.
"""

from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import torch

__all__ = ["CheckpointError", "ForeignObjectsError", "MissingFileError", "Opaque", "load_torch_file", "plain"]


class CheckpointError(ValueError):
    """The file is missing, truncated, or not a torch checkpoint of the expected kind."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason  # without the path: callers name the file their own way


class MissingFileError(CheckpointError):
    """There is no file at the path."""


class ForeignObjectsError(CheckpointError):
    """A readable torch file that pickles objects beyond tensors and plain data."""


class Opaque(dict):
    """Stand-in for an object whose class the restricted unpickler would not import.

    It is a ``dict`` holding the object's pickled state (``__dict__`` / ``__setstate__``
    payload); ``opaque_args`` keeps constructor / ``__reduce__`` arguments and
    ``opaque_items`` list items appended by the pickle. ``opaque_class`` names the original
    class (``"argparse.Namespace"``).
    """

    opaque_class: str = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> Opaque:
        # Pickle's NEWOBJ calls __new__ without __init__: set everything here.
        self = super().__new__(cls)
        self.opaque_args = args
        self.opaque_kwargs = kwargs
        self.opaque_items = []
        return self

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:
            # (dict_state, slot_state) as pickled by objects with __slots__.
            for part in state:
                if isinstance(part, dict):
                    self.update(part)
            return
        if isinstance(state, dict):
            self.update(state)
        else:
            self["__state__"] = state

    # list-like objects are rebuilt with APPEND / APPENDS
    def append(self, item: Any) -> None:
        self.opaque_items.append(item)

    def extend(self, items: Any) -> None:
        self.opaque_items.extend(items)

    def __repr__(self) -> str:
        return f"<Opaque {self.opaque_class} {dict.__repr__(self)}>"


def _opaque_class(module: str, name: str) -> type[Opaque]:
    return type(name, (Opaque,), {"opaque_class": f"{module}.{name}", "__module__": "opaque." + module})


_INERT_BUILTINS = {
    "dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "str", "bytes",
    "bytearray", "bool", "slice", "object", "range",
}


def _allowed_globals() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): __import__("collections").OrderedDict,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
        ("_codecs", "encode"): __import__("_codecs").encode,  # bytes in protocol-2 pickles
    }
    for name in _INERT_BUILTINS:
        allowed[("builtins", name)] = getattr(__import__("builtins"), name)
        allowed[("__builtin__", name)] = allowed[("builtins", name)]
    for name in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
                 "_rebuild_parameter_with_state", "_rebuild_qtensor", "_rebuild_sparse_tensor",
                 "_rebuild_device_tensor_from_numpy", "_rebuild_meta_tensor_no_storage",
                 "_rebuild_wrapper_subclass", "_rebuild_nested_tensor"):
        fn = getattr(torch._utils, name, None)
        if fn is not None:
            allowed[("torch._utils", name)] = fn
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            allowed[("torch", name)] = value
    allowed[("torch", "strided")] = torch.strided
    allowed[("torch", "sparse_coo")] = torch.sparse_coo
    allowed[("torch._tensor", "_rebuild_from_type_v2")] = torch._tensor._rebuild_from_type_v2
    allowed[("torch", "Tensor")] = torch.Tensor
    allowed[("torch.nn.parameter", "Parameter")] = torch.nn.Parameter
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        return _opaque_class(module, name)


#: Passed to ``torch.load(pickle_module=...)``; torch subclasses ``Unpickler`` (keeping our
#: ``find_class``) and resolves tensor storages itself.
_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler, load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load(),
    __name__="restricted_pickle",
)


def _check_readable(path: Path) -> None:
    if not path.is_file():
        raise MissingFileError(path, "no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "empty file")


def _unreadable(path: Path, exc: BaseException) -> CheckpointError:
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return CheckpointError(
        path, f"not a readable torch checkpoint (truncated or wrong file?): {type(exc).__name__}: {first}".rstrip(": ")
    )


def load_torch_file(path: Path | str, *, allow_opaque: bool = False) -> Any:
    """``torch.load`` a checkpoint onto the CPU without executing code from it.

    ``weights_only=True`` first. With ``allow_opaque`` (fairseq checkpoints), a file that the
    weights-only unpickler refuses because of foreign globals is read again with the
    restricted unpickler described in the module docstring. Raises :class:`CheckpointError`
    with the file name for missing, truncated or non-torch files, whatever torch's unpickler
    raised on them (bytes that are not a pickle stream raise ``KeyError``, ``IndexError``,
    ``struct.error`` … from inside it: a text file starting with ``h`` reads as a memo lookup).
    """
    path = Path(path)
    _check_readable(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Raised by the weights-only unpickler for globals it does not allow, and by a
        # corrupt pickle stream alike; the restricted pass tells them apart.
        first_error: Exception = exc
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for garbage input
        raise _unreadable(path, exc) from exc
    if not allow_opaque:
        # "Unsupported global: GLOBAL argparse.Namespace …", "… unsupported GLOBAL posix.system
        # whose module posix is blocked": objects; any other refusal is a broken stream.
        if "unsupported global" not in str(first_error).lower():
            raise _unreadable(path, first_error) from first_error
        raise ForeignObjectsError(
            path, f"holds non-tensor objects that a weights-only load refuses: {first_error}"
        ) from first_error
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unreadable file
        raise _unreadable(path, exc) from exc


def plain(value: Any, _depth: int = 0) -> Any:
    """Turn :class:`Opaque` placeholders into plain ``dict``/``list``/scalars.

    omegaconf containers pickle their data as ``_content`` (a dict or list of nodes) and
    value nodes as ``_val``; ``argparse.Namespace`` pickles its ``__dict__``; enums pickle as
    a call with the value. Tensors are returned unchanged.
    """
    if _depth > 64:
        return None
    if isinstance(value, Opaque):
        if "_content" in value:
            return plain(value["_content"], _depth + 1)
        if "_val" in value:
            return plain(value["_val"], _depth + 1)
        if not len(value) and not value.opaque_items and len(value.opaque_args) == 1:
            return plain(value.opaque_args[0], _depth + 1)  # enum member / simple wrapper
        if value.opaque_items and not len(value):
            return [plain(v, _depth + 1) for v in value.opaque_items]
        return {k: plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, dict):
        return {k: plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v, _depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(plain(v, _depth + 1) for v in value)
    return value
