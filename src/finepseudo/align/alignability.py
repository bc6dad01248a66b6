"""The alignability branch: f_A (frame-wise encoder), f_S (score head), the alignment distance D,
the losses (GITDL, L_AT, L_Score) and the non-parametric alignability classifier phi_A.
See docs/method.md.

Shapes: a batch of videos is uint8 (B, T, H, W, 3); f_A maps it to (B, T, F) L2-normalised per-frame
embeddings; ``D(u, v)`` is soft-DTW over the cosine cost ``1 - u_i . v_j`` divided by ``T_u + T_v``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from finepseudo.align import dtw
from finepseudo.stats import softmax

__all__ = [
    "FrameEncoder",
    "ScoreHead",
    "cosine_cost",
    "alignment_distance",
    "gitdl_loss",
    "avml_loss",
    "class_alignability",
    "pairwise_distance",
    "to_float_frames",
]

_MEAN = torch.tensor([0.45, 0.45, 0.45]).view(1, 3, 1, 1)
_STD = torch.tensor([0.225, 0.225, 0.225]).view(1, 3, 1, 1)


def to_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> normalised float (B*T, 3, H, W)."""
    b, t, h, w, c = frames.shape
    x = frames.reshape(b * t, h, w, c).permute(0, 3, 1, 2).float().div_(255.0)
    return (x - _MEAN.to(x.device)) / _STD.to(x.device)


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FrameEncoder(nn.Module):
    """f_A: a per-frame 2D CNN, optionally a small temporal transformer; L2-normalised (B, T, F) output.

    ``dim`` is F (128 by default), ``width`` the CNN's first channel count, ``pool`` the side of the
    spatial grid the last feature map is average-pooled to before the projection (``pool=1`` is global
    pooling), ``layers`` the temporal transformer depth (0: none).

    Two choices, measured with ``studies/fa_variants.py`` (class-mean DTW accuracy of phi_A after GITDL
    + AVML) on a development SynthDive (generation seed 101, not the benchmark's data): a 4 x 4 grid
    keeps where the body parts are, which global pooling throws away (51 % vs 30 %); and a transformer
    with absolute positional embeddings lets GITDL be solved from the frame's position in the clip
    instead of its content (41 % with one, 51 % with no transformer). So the transformer, when asked
    for, is residual and has no positional embedding: order enters only through DTW.
    """

    def __init__(self, dim: int = 128, width: int = 16, layers: int = 0, pool: int = 4, heads: int = 4,
                 clip_norm: bool = False):
        super().__init__()
        self.clip_norm = bool(clip_norm)
        w = width
        self.cnn = nn.Sequential(
            _conv_bn(3, w, 2), _conv_bn(w, w, 1), _conv_bn(w, 2 * w, 2), _conv_bn(2 * w, 2 * w, 1),
            _conv_bn(2 * w, 4 * w, 2), _conv_bn(4 * w, 4 * w, 1), nn.AdaptiveAvgPool2d(pool), nn.Flatten(),
        )
        self.proj = nn.Linear(4 * w * pool * pool, dim)
        self.temporal = None
        if layers > 0:
            layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.temporal = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(dim, dim)
        self.dim = dim

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: uint8 (B, T, H, W, 3) -> (B, T, F) unit vectors. With ``clip_norm`` each video's channels are
        standardised over its T frames first (its global colour and contrast removed, as f_E's clip_norm)."""
        b, t = frames.shape[:2]
        x = to_float_frames(frames)
        if self.clip_norm:
            v = x.view(b, t, *x.shape[1:])  # (B, T, 3, H, W)
            mean = v.mean(dim=(1, 3, 4), keepdim=True)
            std = v.std(dim=(1, 3, 4), keepdim=True)
            x = ((v - mean) / (std + 1e-3)).view_as(x)
        z = self.proj(self.cnn(x)).view(b, t, -1)
        if self.temporal is not None:
            z = z + self.temporal(z)
        return F.normalize(self.head(z), dim=-1)


class ScoreHead(nn.Module):
    """f_S: a learned monotone map from the alignment distance to a same-class probability logit.

    ``logit = -exp(log_scale) * (D - shift)``: decreasing in D, so a better alignment scores higher.
    Input is only D (a tensor of any shape)."""

    def __init__(self, shift: float = 0.5, scale: float = 10.0):
        super().__init__()
        self.shift = nn.Parameter(torch.tensor(float(shift)))
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return -self.log_scale.exp() * (d - self.shift)

    def prob(self, d: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(d))


def cosine_cost(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """u (B, T1, F), v (B, T2, F), unit vectors -> cost (B, T1, T2) = 1 - u_i . v_j."""
    return 1.0 - torch.bmm(u, v.transpose(1, 2))


def alignment_distance(u: torch.Tensor, v: torch.Tensor, gamma: float) -> torch.Tensor:
    """Differentiable D(u, v) = soft-DTW_gamma(1 - cos) / (T_u + T_v), batched over pairs -> (B,)."""
    c = cosine_cost(u, v)
    return dtw.soft_dtw(c, gamma) / (u.shape[1] + v.shape[1])


def pairwise_distance(
    a: np.ndarray, b: np.ndarray, *, gamma: float = 0.0, backend: str = "auto", band: int | None = None
) -> np.ndarray:
    """All-pairs D between embedding sets a (N, T, F) and b (M, T2, F): DTW (gamma 0) or soft-DTW,
    cosine cost, normalised by T + T2. Chunked by :func:`finepseudo.align.dtw.pairwise`. -> (N, M)."""
    d = dtw.pairwise(a, b, gamma=gamma, metric="cosine", band=band, backend=backend)
    return np.asarray(d, dtype=np.float64) / (a.shape[1] + b.shape[1])


def gitdl_loss(z1: torch.Tensor, z2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor, *, tau: float,
               sigma: float) -> torch.Tensor:
    """Gaussian-infused temporal distinctiveness loss (our reading of GITDL: the paper
    does not publish its exact form; this docstring is the definition we use).

    z1, z2: (B, T, F) unit embeddings of two augmented views of the same videos; t1, t2: (B, T) the
    original (float) timestamps of their frames. For frame i of view 1 the logits over frames j of view
    2 are cos / tau, the target is a Gaussian over t1_i - t2_j (std ``sigma``), loss = KL(target ||
    softmax), symmetric in the views. Negatives are other timestamps of the same video.
    """

    def one_way(a, b, ta, tb):
        logits = torch.bmm(a, b.transpose(1, 2)) / tau
        diff = ta[:, :, None] - tb[:, None, :]
        target = torch.softmax(-(diff**2) / (2 * sigma**2), dim=-1)
        return F.kl_div(torch.log_softmax(logits, -1), target, reduction="batchmean") / a.shape[1]

    return 0.5 * (one_way(z1, z2, t1, t2) + one_way(z2, z1, t2, t1))


def avml_loss(
    anchor: torch.Tensor, positive: torch.Tensor, negatives: list[torch.Tensor], score: ScoreHead, *,
    gamma: float, margin: float, omega: float, use_triplet: bool = True, use_score: bool = True,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Alignability-verification metric learning: L_AV = L_AT + omega * L_Score.

    anchor, positive: (B, T, F); negatives: list of (B, T, F) (e.g. the globally mined hardest negative
    and the in-batch hardest negative). L_AT = mean [D(a,p) - D(a,n) + margin]_+ over every negative;
    L_Score = BCE(S(a,p), 1) + BCE(S(a,n), 0). ``use_triplet`` / ``use_score`` give the ablations.
    """
    d_ap = alignment_distance(anchor, positive, gamma)
    d_an = [alignment_distance(anchor, n, gamma) for n in negatives]
    l_at = torch.stack([F.relu(d_ap - d + margin).mean() for d in d_an]).mean()
    pos_logit = score(d_ap)
    neg_logit = torch.cat([score(d) for d in d_an])
    l_score = F.binary_cross_entropy_with_logits(pos_logit, torch.ones_like(pos_logit)) + \
        F.binary_cross_entropy_with_logits(neg_logit, torch.zeros_like(neg_logit))
    loss = torch.zeros((), device=anchor.device)
    if use_triplet:
        loss = loss + l_at
    if use_score:
        loss = loss + omega * l_score
    stats = {"l_at": l_at.item(), "l_score": l_score.item(), "d_ap": d_ap.detach().mean().item(),
             "d_an": torch.cat(d_an).detach().mean().item()}
    return loss, stats


def class_alignability(dist: np.ndarray, gallery_labels: np.ndarray, num_classes: int, score: ScoreHead,
                       tau: float) -> tuple[np.ndarray, np.ndarray]:
    """phi_A: dist (N, G) alignment distances of N queries to the G gallery videos, gallery labels (G,).

    Returns (Sbar (N, C), p_A (N, C)): Sbar_c = mean alignability score S against the gallery items of
    class c (NaN-free: a class without gallery items gets 0), p_A = softmax(Sbar / tau).
    """
    with torch.no_grad():
        s = score.prob(torch.as_tensor(dist, dtype=torch.float32)).numpy().astype(np.float64)
    sbar = np.zeros((len(dist), num_classes))
    for c in range(num_classes):
        mask = gallery_labels == c
        if mask.any():
            sbar[:, c] = s[:, mask].mean(1)
    return sbar, softmax(sbar / tau)
