"""Exported models: what the workflow trained, as self-describing folders anyone can load and run.

An export folder (``results/<dataset>/export/<method>/frac<P>_seed<S>/``) holds the selected f_E's weights
(``fe.safetensors``), for methods whose pseudo-labels use phi_A also f_A, f_S and the labeled gallery's
embeddings (``alignability.safetensors``), and a model card (``model.json``, with ``README.md`` as a short
Markdown view). Weights are safetensors files: loading them never runs code, and the card's SHA-256 of each
file is checked before anything is read.

- :mod:`finepseudo.export.card`: the card (fields, version, validation, Markdown view);
- :mod:`finepseudo.export.model`: :class:`~finepseudo.export.model.ExportedModel` (load, predict on frame
  arrays or video files) and writing an export;
- :mod:`finepseudo.export.stream`: streaming prediction over many videos (decode, clip, batch, forward) and
  the predictions table;
- :mod:`finepseudo.export.videos`: which files of a folder are videos, and optional frame ranges (no torch,
  read while Snakemake plans the DAG);
- :mod:`finepseudo.export.page`: the HTML page of a prediction run (a frame strip per video, its top-3);
- :mod:`finepseudo.export.steps`: the workflow's ``export_model`` and ``predict_videos`` steps.

``from finepseudo.export import ExportedModel`` works (imported on first use, so that reading
:mod:`finepseudo.export.videos` does not import torch).
"""

from __future__ import annotations

__all__ = ["ExportedModel", "ExportError"]


def __getattr__(name: str):
    if name == "ExportedModel":
        from finepseudo.export.model import ExportedModel

        return ExportedModel
    if name == "ExportError":
        from finepseudo.export.card import ExportError

        return ExportError
    raise AttributeError(f"module 'finepseudo.export' has no attribute {name!r}")
