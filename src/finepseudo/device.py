"""Where and how a workflow step runs torch: the device the config key ``device`` names, and the process's
threads, seed and deterministic algorithms. Every step calls both first (the ``*_step`` functions of
:mod:`finepseudo.models.steps`, :mod:`finepseudo.align.steps`, :mod:`finepseudo.pseudo.steps`,
:mod:`finepseudo.baselines.steps`, :mod:`finepseudo.export.steps`). torch is imported on first call.
"""

from __future__ import annotations

__all__ = ["resolve_device", "setup_torch"]


def resolve_device(device: str) -> str:
    """``auto`` -> cuda when usable, else cpu; ``cuda`` without a GPU is an error naming the key."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device' is 'cuda' but torch sees no usable GPU: set device: auto or cpu")
    return device


def setup_torch(threads: int, seed: int) -> None:
    """``threads`` CPU threads (at least 1), the global torch seed, and deterministic algorithms (a warning,
    not an error, where an operation has none)."""
    import torch

    torch.set_num_threads(max(1, int(threads)))
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
