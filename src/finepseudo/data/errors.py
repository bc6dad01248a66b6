"""The error every dataset adapter raises for a malformed annotation: defined here, below the adapters'
interface (:mod:`finepseudo.data.datasets`) and the per-format modules (:mod:`finepseudo.data.finegym`,
:mod:`finepseudo.data.finediving`), so that each of them imports it without importing the others.
"""

from __future__ import annotations

__all__ = ["AnnotationError"]


class AnnotationError(ValueError):
    """An annotation or vocabulary file is malformed; the message names the file and entry."""
