"""Trivial baselines: what a method must beat before its accuracy means anything.

Pure functions, arrays in and arrays out; :mod:`finepseudo.baselines.steps` reads the files and writes the
outputs. Every baseline classifies a test video from the split's labeled videos (the gallery) only:

- ``pixel_dtw``: 1-NN under hard DTW between sequences of pixel frames (:func:`frame_vectors`: each frame
  area-averaged to ``size`` x ``size`` RGB pixels, flattened and centred), cosine cost
  (:func:`dtw_distances`). It sees the order of the frames and tolerates time warps.
- ``pixel_pooled``: 1-NN under the cosine distance of the same frame vectors averaged over time
  (:func:`pooled_vectors`, :func:`cosine_distances`): no time at all, so a sequence and its time-reversal
  are the same point.
- ``ssl_probe``: nearest class mean (cosine) on the pooled backbone features of the self-supervised f_E
  (:func:`pooled_features`, :func:`class_mean_distances`).
- ``phi_a`` needs no function here: it is argmax p_A, read from predict_alignability's table.

Each classifier is written as per-class distances ``(Q, C)`` (:func:`class_distances` for 1-NN,
:func:`class_mean_distances` for the class means) and :func:`decide` takes the nearest class. Nothing here
is random: the same inputs give the same predictions.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from finepseudo.align import dtw

__all__ = ["frame_vectors", "pooled_vectors", "cosine_distances", "dtw_distances", "class_distances",
           "class_mean_distances", "decide", "pooled_features"]

_EPS = 1e-12


def frame_vectors(frames: np.ndarray | torch.Tensor, size: int) -> np.ndarray:
    """Pixel vector of every frame: uint8 or float [0, 255] frames (N, T, H, W, 3) -> float32
    (N, T, 3 * size * size).

    Each frame is area-averaged to ``size`` x ``size`` (every output pixel is the mean of the input pixels
    its cell covers, as ``F.interpolate(mode="area")``), kept in RGB (colour is free information for a
    baseline, so it is not thrown away), scaled to [0, 1], flattened channel-first, and centred: the frame
    vector's own mean over its 3 * size * size entries is subtracted, so a global brightness change does
    not move it. A uniform frame becomes the zero vector (cosine 0 with everything, see
    :func:`cosine_distances`).
    """
    x = torch.as_tensor(frames)
    if x.ndim != 5 or x.shape[-1] != 3:
        raise ValueError(f"frames must be (N, T, H, W, 3), got shape {tuple(x.shape)}")
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    n, t, h, w, _ = x.shape
    flat = x.reshape(n * t, h, w, 3).permute(0, 3, 1, 2).float() / 255.0  # (N*T, 3, H, W)
    small = F.interpolate(flat, size=(size, size), mode="area") if len(flat) else flat.new_zeros((0, 3, size, size))
    v = small.reshape(n, t, 3 * size * size)
    return (v - v.mean(dim=2, keepdim=True)).numpy().astype(np.float32)


def pooled_vectors(vectors: np.ndarray) -> np.ndarray:
    """The frame vectors of each video averaged over time: (N, T, D) -> (N, D)."""
    v = np.asarray(vectors)
    if v.ndim != 3:
        raise ValueError(f"vectors must be (N, T, D), got shape {v.shape}")
    return v.mean(axis=1)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), _EPS)


def cosine_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 - cos between every row of ``a`` (Q, D) and of ``b`` (G, D) -> float64 (Q, G) in [0, 2]. A zero
    vector has cosine 0 with everything (distance 1), as in the DTW module's cost."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must be (Q, D) and (G, D) with the same D, got {a.shape} and {b.shape}")
    return 1.0 - _unit(a) @ _unit(b).T


def dtw_distances(queries: np.ndarray, gallery: np.ndarray, *, backend: str = "auto") -> np.ndarray:
    """Hard-DTW alignment cost between every query sequence (Q, T, D) and gallery sequence (G, T2, D), frame
    cost 1 - cos (:func:`finepseudo.align.dtw.pairwise` with gamma 0) -> (Q, G), the sum of costs along the
    best monotone path. Every sequence here has the same length, so the sums compare as they are."""
    return np.asarray(dtw.pairwise(queries, gallery, gamma=0.0, metric="cosine", backend=backend), np.float64)


def _check_labels(labels: np.ndarray, n: int, num_classes: int) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (n,):
        raise ValueError(f"gallery labels must be ({n},), one per gallery video, got shape {y.shape}")
    if n and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"gallery labels must lie in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    return y


def class_distances(dist: np.ndarray, gallery_labels: np.ndarray, num_classes: int) -> np.ndarray:
    """1-NN as class distances: query-gallery distances (Q, G) and the gallery's labels (G,) -> (Q, C), the
    distance of each query to its nearest gallery video of each class (+inf for a class without one), so
    the nearest class is the class of the nearest gallery video."""
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"dist must be (Q, G), got shape {d.shape}")
    y = _check_labels(gallery_labels, d.shape[1], num_classes)
    out = np.full((d.shape[0], num_classes), np.inf)
    for c in np.unique(y):
        out[:, c] = d[:, y == c].min(axis=1)
    return out


def class_mean_distances(queries: np.ndarray, gallery: np.ndarray, gallery_labels: np.ndarray,
                         num_classes: int) -> np.ndarray:
    """Nearest class mean: query features (Q, D), gallery features (G, D) and labels (G,) -> (Q, C) cosine
    distances to each class's mean gallery feature (+inf for a class without gallery videos).

    Features are first centred by the mean gallery feature (pooled ReLU features are all positive, so
    without it every cosine is close to 1) and L2-normalised; the class mean is taken over the normalised
    gallery features. Only the gallery's statistics are used, never the queries'."""
    q, g = np.asarray(queries, np.float64), np.asarray(gallery, np.float64)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1] or len(g) == 0:
        raise ValueError(f"queries and gallery must be (Q, D) and (G >= 1, D), got {q.shape} and {g.shape}")
    y = _check_labels(gallery_labels, len(g), num_classes)
    centre = g.mean(axis=0, keepdims=True)
    qn, gn = _unit(q - centre), _unit(g - centre)
    out = np.full((len(q), num_classes), np.inf)
    for c in np.unique(y):
        out[:, c] = cosine_distances(qn, gn[y == c].mean(axis=0, keepdims=True))[:, 0]
    return out


def decide(class_dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The nearest class and a confidence: (Q, C) class distances (>= 0, +inf where a class cannot be
    chosen) -> (pred int64 (Q,), confidence float64 (Q,)).

    Ties go to the lower class index. confidence = d_2 / (d_1 + d_2), with d_1 the distance to the chosen
    class and d_2 to the next nearest class: 0.5 when they tie, towards 1 when the chosen class is much
    nearer, 1 when no other class can be chosen (and 0.5 when both distances are 0)."""
    d = np.asarray(class_dist, dtype=np.float64)
    if d.ndim != 2 or d.shape[1] == 0:
        raise ValueError(f"class_dist must be (Q, C >= 1), got shape {d.shape}")
    if len(d) and not np.isfinite(d).any(axis=1).all():
        raise ValueError("every query needs at least one class with a finite distance (an empty gallery?)")
    pred = d.argmin(axis=1)
    part = np.sort(d, axis=1)
    d1 = part[:, 0]
    d2 = part[:, 1] if d.shape[1] > 1 else np.full(len(d), np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.where(np.isinf(d2), 1.0, np.where(d1 + d2 > 0, d2 / (d1 + d2), 0.5))
    return pred.astype(np.int64), conf


@torch.no_grad()
def pooled_features(model: torch.nn.Module, clips, *, clip_frames: int, clips_per_video: int, batch_size: int,
                    device: str = "cpu") -> np.ndarray:
    """f_E's pooled backbone features of every video, as evaluation sees it: uint8 clips (N, T_store, H, W, 3)
    (a tensor or a FrameStore) -> float32 (N, D), ``model.features`` averaged over the ``clips_per_video``
    deterministic test clips of ``clip_frames`` frames (:func:`finepseudo.models.augment.eval_indices`, the
    clips :func:`finepseudo.models.train.predict_proba` averages), in eval mode."""
    from finepseudo.models.augment import eval_indices, to_model_input

    n, t_store = int(clips.shape[0]), int(clips.shape[1])
    if clip_frames > t_store:
        raise ValueError(f"clip_frames {clip_frames} exceeds the {t_store} stored frames per video")
    was_training = model.training
    model.eval().to(device)
    t_idx = torch.as_tensor(eval_indices(t_store, clip_frames, clips_per_video))  # (K, clip_frames)
    out = []
    for start in range(0, n, batch_size):
        part = clips[start:start + batch_size]
        acc = None
        for k in range(t_idx.shape[0]):
            f = model.features(to_model_input(part[:, t_idx[k]]).to(device)).float().cpu()
            acc = f if acc is None else acc + f
        out.append(acc / t_idx.shape[0])
    model.train(was_training)
    dim = int(getattr(model, "feature_dim", 0))
    return torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, dim), np.float32)
