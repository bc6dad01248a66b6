"""Reading pickles from outside the project (FineDiving's annotation files) without running their code.

``pickle.load`` calls whatever a file names, so a tampered annotation file could run code as the user
running the workflow. :func:`load` admits only plain containers (dict, list, tuple, set), numbers,
strings, bytes, None and numpy arrays and scalars; a file naming anything else is refused with an
error that names the file and the object.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

__all__ = ["UnsafePickleError", "load", "loads"]

# (module, name) pairs a plain-data pickle may reference: builtin containers and numpy's array and scalar
# reconstruction (numpy 1.x spells the module numpy.core, numpy 2.x numpy._core)
_ALLOWED = {
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "bytearray"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
}


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle references something other than plain data; the message names the file and the object."""


class _Restricted(pickle.Unpickler):
    def __init__(self, file, where: str):
        super().__init__(file)
        self.where = where

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise UnsafePickleError(
                f"{self.where} references {module}.{name}, which is not plain data (containers, numbers, "
                "strings, numpy arrays); refusing to load it, since unpickling it could run code. Use the "
                "dataset's official file, or convert it to plain data.")
        return super().find_class(module, name)


def loads(data: bytes, where: str = "pickle data"):
    """Unpickle ``data`` admitting plain data only (see the module docstring)."""
    try:
        return _Restricted(io.BytesIO(data), where).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of a malformed file is reported with its name
        raise UnsafePickleError(f"{where} is not a readable pickle: {type(exc).__name__}: {exc}") from None


def load(path: str | Path):
    """Unpickle the file ``path`` admitting plain data only; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path} (check the dataset.* paths in the config)")
    return loads(path.read_bytes(), str(path))
