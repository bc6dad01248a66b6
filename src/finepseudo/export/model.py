"""Load an exported model and predict with it; write an export.

:meth:`ExportedModel.load` reads the card (``model.json``, checked by :mod:`finepseudo.export.card`), checks
the SHA-256 of every weights file against it, reads the weights with safetensors (a format that holds
tensors only: nothing is unpickled, no code runs) and rebuilds f_E (and f_A, f_S and the gallery for phi_A)
exactly as the card describes. Any missing, changed or mismatched file stops loading with a message that
names it.

Prediction is the workflow's own: :meth:`ExportedModel.predict_frames` runs the evaluation's
``predict_proba_and_logits`` (clips, normalisation, softmax averaged over the clips) and phi_A as the
pseudo-labeling rounds compute it; :meth:`ExportedModel.predict` decodes video files with the workflow's frame
extraction first and streams (:mod:`finepseudo.export.stream`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from finepseudo.export.card import CARD_FILE, ExportError, file_sha256, read_card, write_card

__all__ = ["ExportedModel", "Prediction", "save_export", "FE_FILE", "ALIGNABILITY_FILE"]

FE_FILE = "fe.safetensors"
ALIGNABILITY_FILE = "alignability.safetensors"


@dataclass
class Prediction:
    """Predictions for N videos.

    probs: float32 (N, C), p_E as the workflow's evaluation computes it (the softmax averaged over the clips;
        its argmax is the prediction the report scores); logits: float32 (N, C), the clips' mean logits;
    calibrated: float64 (N, C), p_E calibrated, softmax(logits / T_E) (``probs`` when the card has no
        temperature); p_a and sbar: float64 (N, C), phi_A's p_A = softmax(Sbar / tau) and Sbar (mean
        alignability to each class's gallery videos), or None when the export has no phi_A.
    """

    probs: np.ndarray
    logits: np.ndarray
    calibrated: np.ndarray
    p_a: np.ndarray | None = None
    sbar: np.ndarray | None = None

    @property
    def pred(self) -> np.ndarray:
        """The predicted class of each video (argmax of ``probs``, as the evaluation)."""
        return self.probs.argmax(1)


def _load_safetensors(folder: Path, name: str, digest: str) -> dict[str, torch.Tensor]:
    """The tensors of ``folder/name`` after checking its SHA-256 against the card. safetensors reads a JSON
    header and raw tensor bytes: nothing is unpickled."""
    from safetensors.torch import load_file

    path = folder / name
    if not path.is_file():
        raise ExportError(f"{path} not found: {CARD_FILE} lists it; copy the whole export folder, or export again")
    actual = file_sha256(path)
    if actual != digest:
        raise ExportError(f"{path}: its SHA-256 ({actual[:16]}...) differs from the one in {CARD_FILE} "
                          f"({digest[:16]}...): the file was changed or replaced after export; restore it or export "
                          "the model again")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a bad header
        raise ExportError(f"{path} is not a valid safetensors file ({type(exc).__name__}: {exc}); export the model "
                          "again") from None


def _load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """Load ``state`` strictly into ``module``; a missing, unexpected or misshaped tensor names the file."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ExportError(f"{path} does not fit {what} described in {CARD_FILE}: missing {missing[:5]}, unexpected "
                          f"{unexpected[:5]}, other shapes {shapes[:5]} (weights of another model?); export again")
    dtypes = [k for k in own if state[k].dtype != own[k].dtype]
    if dtypes:
        raise ExportError(f"{path}: tensors {dtypes[:5]} have other dtypes than {what} needs; export again")
    module.load_state_dict(state, strict=True)


def _strip(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


class ExportedModel:
    """An exported f_E (and phi_A when exported), ready to predict on frame arrays or video files.

    Load with :meth:`load`. ``card`` is the model card (a dict), ``classes`` the class names by index,
    ``preprocessing`` how frames are prepared, ``temperature`` p_E's calibration temperature (or None),
    ``has_alignability`` whether p_A can be computed.
    """

    def __init__(self, folder: Path, card: dict, fe: torch.nn.Module, device: str, alignability: dict | None):
        self.folder, self.card, self.fe, self.device = folder, card, fe, device
        self._al = alignability

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, folder: str | os.PathLike, device: str = "cpu") -> ExportedModel:
        """Read an export folder (card checked, weights checked against the card's SHA-256, read without
        unpickling). ``device``: cpu, cuda or auto. Raises :class:`~finepseudo.export.card.ExportError` naming
        the file that is missing, changed or does not fit."""
        from finepseudo.align.alignability import FrameEncoder, ScoreHead
        from finepseudo.device import resolve_device
        from finepseudo.models.video import build_video_model

        folder = Path(folder)
        card = read_card(folder)
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but torch sees no usable GPU: use device 'cpu' or 'auto'")
        dev = resolve_device(device)
        m = card["model"]
        try:
            fe = build_video_model(m["arch"], m["num_classes"], **m["model_kwargs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ExportError(f"{folder / CARD_FILE}: model {m['arch']!r} with {m['model_kwargs']} cannot be built "
                              f"by this finepseudo ({exc})") from None
        state = _load_safetensors(folder, m["weights"], card["files"][m["weights"]])
        _load_into(fe, state, folder / m["weights"], f"f_E ({m['arch']}, {m['num_classes']} classes)")
        fe.eval().to(dev)
        al = None
        if card["alignability"] is not None:
            a = card["alignability"]
            path = folder / a["weights"]
            tensors = _load_safetensors(folder, a["weights"], card["files"][a["weights"]])
            try:
                fa = FrameEncoder(**a["arch"])
            except TypeError as exc:
                raise ExportError(f"{folder / CARD_FILE}: alignability.arch {a['arch']} is not an f_A this finepseudo "
                                  f"builds ({exc})") from None
            _load_into(fa, _strip(tensors, "fa."), path, f"f_A ({a['arch']})")
            score = ScoreHead()
            _load_into(score, _strip(tensors, "fs."), path, "the score head f_S")
            emb, labels = tensors.get("gallery.embeddings"), tensors.get("gallery.labels")
            want = (a["gallery_videos"], a["num_frames"], a["arch"].get("dim", fa.dim))
            if emb is None or labels is None or tuple(emb.shape) != want or tuple(labels.shape) != (want[0],):
                raise ExportError(f"{path}: the gallery (gallery.embeddings {None if emb is None else tuple(emb.shape)}"
                                  f", gallery.labels {None if labels is None else tuple(labels.shape)}) does not match "
                                  f"{CARD_FILE} ({want[0]} videos x {want[1]} frames x {want[2]}); export again")
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= m["num_classes"]):
                raise ExportError(f"{path}: gallery labels outside 0..{m['num_classes'] - 1}; export again")
            al = {"fa": fa.eval().to(dev), "score": score.eval(), "embeddings": emb.numpy().astype(np.float32),
                  "labels": labels.numpy().astype(np.int64), **a}
        return cls(folder, card, fe, dev, al)

    # ------------------------------------------------------------------------------------------ facts
    @property
    def classes(self) -> list[str]:
        return [c["name"] for c in self.card["classes"]]

    @property
    def preprocessing(self) -> dict:
        return self.card["preprocessing"]

    @property
    def temperature(self) -> float | None:
        return self.card["calibration"]["temperature"]

    @property
    def has_alignability(self) -> bool:
        return self._al is not None

    @property
    def min_frames(self) -> int:
        """Frames a clip takes (f_E's clip, and f_A's when exported): a shorter video is padded by repeating frames."""
        n = self.preprocessing["clip_frames"]
        return max(n, self._al["num_frames"]) if self._al else n

    # ------------------------------------------------------------------------------------------ predicting
    def prepare_frames(self, frames) -> torch.Tensor:
        """uint8 RGB frames (N, T, H, W, 3), or one video's (T, H, W, 3), as numpy or torch, at the card's frame
        size -> the uint8 tensor (N, frames_per_video, S, S, 3) the model reads. Other numbers of frames are
        sampled uniformly to ``frames_per_video``, as the workflow's extraction samples decoded frames."""
        from finepseudo.data.frames import sample_indices

        x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames)
        if x.ndim == 4:
            x = x[None]
        s = self.preprocessing["frame_size"]
        if x.dtype != torch.uint8 or x.ndim != 5 or tuple(x.shape[2:]) != (s, s, 3):
            raise ValueError(f"frames must be uint8 RGB (N, T, {s}, {s}, 3) or (T, {s}, {s}, 3) (the card's frame size "
                             f"{s}), got {x.dtype} {tuple(x.shape)}: decode videos with ExportedModel.decode or "
                             "predict on their paths")
        t = self.preprocessing["frames_per_video"]
        if x.shape[1] != t:
            if x.shape[1] == 0:
                raise ValueError("frames hold no frame (T = 0)")
            x = x[:, torch.as_tensor(sample_indices(x.shape[1], t))]
        return x.contiguous()

    @torch.no_grad()
    def predict_frames(self, frames) -> Prediction:
        """Predict N videos given as frames (see :meth:`prepare_frames`)."""
        from finepseudo.models.train import predict_proba_and_logits
        from finepseudo.stats import softmax

        x = self.prepare_frames(frames)
        p = self.preprocessing
        probs, logits = predict_proba_and_logits(self.fe, x, clip_frames=p["clip_frames"],
                                                 clips_per_video=p["clips_per_video"], batch_size=p["batch_size"],
                                                 device=self.device)
        t = self.temperature
        calibrated = probs.astype(np.float64) if t is None else softmax(np.asarray(logits) / t)
        out = Prediction(probs, logits, calibrated)
        if self._al is not None and len(x):
            out.sbar, out.p_a = self._alignability(x)
        return out

    def _alignability(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """phi_A of the videos ``x``: f_A embeddings, soft-DTW distances to the gallery, Sbar and p_A, as the
        pseudo-labeling rounds compute them."""
        from finepseudo.align.alignability import class_alignability, pairwise_distance
        from finepseudo.align.train import embed_videos

        a = self._al
        emb = embed_videos(a["fa"], x, num_frames=a["num_frames"], device=self.device)
        backend = "cpu" if torch.device(self.device).type == "cpu" else "auto"
        d = pairwise_distance(emb, a["embeddings"], gamma=a["gamma"], backend=backend)
        return class_alignability(d, a["labels"], len(self.classes), a["score"], a["tau"])

    def decode(self, path: str | os.PathLike, *, start_frame: int = 0, end_frame: int = -1,
               start_sec: float | None = None, end_sec: float | None = None) -> tuple[np.ndarray, int, list[str]]:
        """One video (file, or folder of frame images) decoded and sampled as the workflow's frame extraction does
        with this export's settings -> (uint8 (frames_per_video, S, S, 3), frames in the range, warnings)."""
        from finepseudo.export.stream import decode_item
        from finepseudo.export.videos import VideoItem

        item = VideoItem(Path(path).stem, str(path), start_frame, end_frame, start_sec, end_sec)
        return decode_item(item, self.preprocessing)

    def predict(self, videos: str | os.PathLike | Sequence[Any], *, ranges: str | os.PathLike | dict | None = None,
                batch_size: int | None = None, workers: int = 2, progress=None):
        """Predict video files: a path, or a list of paths, folders of videos or
        :class:`~finepseudo.export.videos.VideoItem`. ``ranges``: frame ranges by video id (a TSV such as the
        workflow's manifest, or a dict, see :func:`~finepseudo.export.videos.read_ranges`). Returns a pandas
        DataFrame with one row per video (:data:`finepseudo.export.stream.columns`); a video that cannot be
        decoded gets a row with status ``failed`` and the reason. ``progress``: called with each row."""
        import pandas as pd

        from finepseudo.export.stream import columns, iter_rows
        from finepseudo.export.videos import VideoItem, collect_videos, read_ranges, with_ranges

        if isinstance(videos, (str, os.PathLike)):
            videos = [videos]
        items = [v for v in videos if isinstance(v, VideoItem)]
        items += collect_videos([v for v in videos if not isinstance(v, VideoItem)])
        rng = read_ranges(ranges) if isinstance(ranges, (str, os.PathLike)) else ranges
        rows = []
        for row, _ in iter_rows(self, with_ranges(items, rng), batch_size=batch_size, workers=workers):
            rows.append(row)
            if progress is not None:
                progress(row)
        return pd.DataFrame(rows, columns=columns(self))


def save_export(folder: str | os.PathLike, card: dict, fe: torch.nn.Module, *, fa: torch.nn.Module | None = None,
                score: torch.nn.Module | None = None, gallery_embeddings: np.ndarray | None = None,
                gallery_labels: np.ndarray | None = None) -> dict:
    """Write an export: f_E's state dict to ``fe.safetensors``; with ``fa``, f_A (``fa.*``), f_S (``fs.*``) and the
    gallery (``gallery.embeddings`` float32 (G, T, F), ``gallery.labels`` int64 (G,)) to
    ``alignability.safetensors``; then the card with every file's SHA-256 (``model.json``, ``README.md``).
    ``card`` is completed in place (model.weights, alignability.weights, files) and returned."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {"format": "pt"}  # one key: safetensors writes several in a random order, and the file should be reproducible
    save_file({k: v.detach().cpu().contiguous().clone() for k, v in fe.state_dict().items()}, str(folder / FE_FILE),
              metadata=meta)
    card["model"]["weights"] = FE_FILE
    files = {FE_FILE: file_sha256(folder / FE_FILE)}
    if fa is not None:
        if score is None or gallery_embeddings is None or gallery_labels is None:
            raise ValueError("an export with f_A needs the score head and the gallery's embeddings and labels")
        tensors = {f"fa.{k}": v.detach().cpu().contiguous().clone() for k, v in fa.state_dict().items()}
        tensors |= {f"fs.{k}": v.detach().cpu().contiguous().clone() for k, v in score.state_dict().items()}
        tensors["gallery.embeddings"] = torch.from_numpy(np.array(gallery_embeddings, np.float32, copy=True))
        tensors["gallery.labels"] = torch.from_numpy(np.array(gallery_labels, np.int64, copy=True))
        save_file(tensors, str(folder / ALIGNABILITY_FILE), metadata=meta)
        card["alignability"]["weights"] = ALIGNABILITY_FILE
        files[ALIGNABILITY_FILE] = file_sha256(folder / ALIGNABILITY_FILE)
    umask = os.umask(0)
    os.umask(umask)
    for name in files:  # safetensors creates files readable by their owner only; an export is meant to be shared
        os.chmod(folder / name, 0o666 & ~umask)
    card["files"] = files
    write_card(folder, card)
    return card
