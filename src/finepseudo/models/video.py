"""Model registry (timm style): one constructor signature for every backbone.

Video classifiers f_E take a float tensor ``(B, 3, T, H, W)`` (normalised RGB) and return logits
``(B, num_classes)``; every model also has ``features(x) -> (B, D)`` (the pooled embedding before
the classifier) and ``feature_dim``.

- ``r2plus1d_tiny``: the CPU default, a scaled-down R(2+1)D of the same design as torchvision's
  R(2+1)D-18: a (2+1)D stem, residual blocks of two (2+1)D convolutions (spatial 1xkxk, then
  temporal kx1x1, BN + ReLU between), two blocks per stage, the last BN of each residual branch
  initialised to zero (every block starts as the identity), global average pooling, linear head.
  Defaults: widths 16-32-64, 48 px / 16-frame input, 0.39 GFLOP per clip for a training step,
  243k parameters.
- ``r2plus1d_18`` and ``r3d_18``: torchvision's video ResNets (112 px, GPU configs).

No weights are ever downloaded: ``weights`` is a path to a state dict (or a checkpoint holding
one under ``"state_dict"``/``"model"``) saved by the user.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["VIDEO_MODELS", "R2Plus1DTiny", "build_video_model", "list_video_models", "register_video_model",
           "standardize_clips"]

VIDEO_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_video_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register ``fn(num_classes, **kwargs) -> nn.Module`` under ``name``."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in VIDEO_MODELS:
            raise KeyError(f"video model {name!r} registered twice")
        VIDEO_MODELS[name] = fn
        return fn

    return deco


def list_video_models() -> list[str]:
    """Names accepted by :func:`build_video_model`."""
    return sorted(VIDEO_MODELS)


def build_video_model(arch: str, num_classes: int, *, weights: str | os.PathLike | None = None,
                      **kwargs: Any) -> nn.Module:
    """Build the video classifier ``arch`` with ``num_classes`` outputs.

    weights: None (random init, seeded by the caller through ``torch.manual_seed``) or the path
    of a state dict to load (strict; a classifier head of another size, or none at all, is skipped
    with the remaining keys loaded, so a self-supervised or Kinetics checkpoint can initialise a
    new head, which keeps its fresh init).
    kwargs go to the constructor (e.g. ``width``, ``dropout`` for ``r2plus1d_tiny``).
    Input (B, 3, T, H, W) float, output (B, num_classes) logits.
    """
    if arch not in VIDEO_MODELS:
        raise KeyError(f"unknown video model {arch!r}; available: {list_video_models()}")
    model = VIDEO_MODELS[arch](num_classes, **kwargs)
    if weights is not None:
        load_weights(model, weights)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load a state dict from ``path`` into ``model`` (never downloads anything).

    Keys whose shapes differ from the model's (a classifier head for another number of classes)
    are skipped, and the classifier head (``fc.*``) may be absent from the file (a self-supervised
    backbone); a checkpoint whose ``metadata["stage"]`` is ``"ssl"`` never sets the head. A skipped
    or absent head keeps the model's fresh init. Any other missing or unexpected key is an error.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"model weights file not found: {p} (weights are never downloaded: "
                                "save a state dict there or set weights to null)")
    state = torch.load(p, map_location="cpu", weights_only=True)
    ssl_stage = isinstance(state, dict) and isinstance(state.get("metadata"), dict) and \
        state["metadata"].get("stage") == "ssl"
    if isinstance(state, dict):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    own = model.state_dict()
    # torchvision checkpoints name the backbone without our wrapper's "net." prefix
    state = {("net." + k if k not in own and "net." + k in own else k): v for k, v in state.items()}
    skipped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    state = {k: v for k, v in state.items() if k not in skipped and not (ssl_stage and _is_head(k))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if k not in skipped and not _is_head(k)]
    if missing or unexpected:
        raise RuntimeError(f"weights {p} do not match the model: missing {missing[:8]}, unexpected "
                           f"{unexpected[:8]}")


def standardize_clips(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Each clip's channels standardised over its own frames and pixels: (B, C, T, H, W) -> same shape, every
    (clip, channel) with mean 0 and std 1. It removes a video's global colour and contrast (a hall's wall
    colour, lighting), which otherwise dominate what a small network sees before it has found the diver:
    on a development SynthDive with per-video backgrounds, r2plus1d_tiny stayed at chance for 600 steps
    without it and reached 31 % with it (studies/results/nuisance_ablation.csv)."""
    mean = x.mean(dim=(2, 3, 4), keepdim=True)
    std = x.std(dim=(2, 3, 4), keepdim=True)
    return (x - mean) / (std + eps)


def _is_head(key: str) -> bool:
    """The classifier head's parameters: ``fc.weight`` / ``fc.bias`` (R2Plus1DTiny and the torchvision wrapper)."""
    return key.split(".", 1)[0] == "fc"


# ----------------------------------------------------------------------------------------------
# R(2+1)D, scaled down


class Conv2Plus1D(nn.Sequential):
    """(2+1)D convolution: spatial (1, k, k) conv -> BN -> ReLU -> temporal (kt, 1, 1) conv.

    (B, C_in, T, H, W) -> (B, C_out, T / t_stride, H / s_stride, W / s_stride).
    """

    def __init__(self, c_in: int, c_out: int, c_mid: int, *, k: int = 3, kt: int = 3,
                 s_stride: int = 1, t_stride: int = 1) -> None:
        super().__init__(
            nn.Conv3d(c_in, c_mid, (1, k, k), stride=(1, s_stride, s_stride), padding=(0, k // 2, k // 2),
                      bias=False),
            nn.BatchNorm3d(c_mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(c_mid, c_out, (kt, 1, 1), stride=(t_stride, 1, 1), padding=(kt // 2, 0, 0), bias=False),
        )


def _mid(c_in: int, c_out: int, k: int = 3, kt: int = 3) -> int:
    """Middle width that matches a full kt x k x k 3D conv's parameter count (as in R(2+1)D)."""
    return max(c_out, (kt * k * k * c_in * c_out) // (k * k * c_in + kt * c_out))


class Block2Plus1D(nn.Module):
    """Residual block: x + BN(conv(ReLU(BN(conv(x))))) with (2+1)D convs; the last BN starts at 0.

    mid: width between the spatial and temporal conv of each (2+1)D conv, "matched" (the
    R(2+1)D rule: as many parameters as a full 3x3x3 conv) or "out" (= c_out, cheaper).
    """

    def __init__(self, c_in: int, c_out: int, *, s_stride: int = 1, t_stride: int = 1,
                 mid: str = "matched") -> None:
        super().__init__()
        if mid not in ("matched", "out"):
            raise ValueError(f"mid must be 'matched' (R(2+1)D rule) or 'out' (= output width), got {mid!r}")
        m1 = _mid(c_in, c_out) if mid == "matched" else c_out
        m2 = _mid(c_out, c_out) if mid == "matched" else c_out
        self.conv1 = Conv2Plus1D(c_in, c_out, m1, s_stride=s_stride, t_stride=t_stride)
        self.bn1 = nn.BatchNorm3d(c_out)
        self.conv2 = Conv2Plus1D(c_out, c_out, m2)
        self.bn2 = nn.BatchNorm3d(c_out)
        nn.init.zeros_(self.bn2.weight)
        self.relu = nn.ReLU(inplace=True)
        self.down: nn.Module = nn.Identity()
        if c_in != c_out or s_stride != 1 or t_stride != 1:
            self.down = nn.Sequential(
                nn.Conv3d(c_in, c_out, 1, stride=(t_stride, s_stride, s_stride), bias=False),
                nn.BatchNorm3d(c_out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, C_out, T', H', W')."""
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.down(x))


class R2Plus1DTiny(nn.Module):
    """A small R(2+1)D for 48-64 px, 16-frame clips on a CPU.

    stem: (1, 5, 5) spatial conv with stride 2 -> BN -> ReLU -> (3, 1, 1) temporal conv -> BN ->
    ReLU; then one stage per entry of ``widths``, each of ``blocks`` residual (2+1)D blocks whose
    first block strides space by ``s_strides[i]`` and time by ``t_strides[i]``. Head: global
    average pooling, dropout, linear. ``mid`` is passed to every block (see :class:`Block2Plus1D`);
    the default "out" halves the FLOPs of the R(2+1)D rule and calibrated as well on SynthDive.
    Input (B, 3, T, H, W), output (B, num_classes). At 48 px, 16 frames and the defaults, the stages
    see 12x12x16, 6x6x8 and 3x3x4. ``clip_norm``: standardise each clip first (no parameters).
    """

    def __init__(self, num_classes: int, *, widths: tuple[int, ...] = (16, 32, 64), blocks: int = 2,
                 s_strides: tuple[int, ...] = (2, 2, 2), t_strides: tuple[int, ...] = (1, 2, 2),
                 stem_width: int = 16, dropout: float = 0.0, mid: str = "out", clip_norm: bool = False) -> None:
        super().__init__()
        self.clip_norm = bool(clip_norm)
        if not len(widths) == len(s_strides) == len(t_strides):
            raise ValueError(f"widths {widths}, s_strides {s_strides} and t_strides {t_strides} must have "
                             "one entry per stage")
        w0 = widths[0]
        self.stem = nn.Sequential(
            nn.Conv3d(3, stem_width, (1, 5, 5), stride=(1, 2, 2), padding=(0, 2, 2), bias=False),
            nn.BatchNorm3d(stem_width),
            nn.ReLU(inplace=True),
            nn.Conv3d(stem_width, w0, (3, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(w0),
            nn.ReLU(inplace=True),
        )
        stages = []
        c_in = w0
        for w, ss, ts in zip(widths, s_strides, t_strides, strict=True):
            layers = []
            for b in range(blocks):
                layers.append(Block2Plus1D(c_in, w, s_stride=ss if b == 0 else 1, t_stride=ts if b == 0 else 1,
                                           mid=mid))
                c_in = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)
        self.feature_dim = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():
            if isinstance(m, Block2Plus1D):
                nn.init.zeros_(m.bn2.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> pooled embedding (B, feature_dim); with ``clip_norm`` each clip is first
        standardised (:func:`standardize_clips`)."""
        if self.clip_norm:
            x = standardize_clips(x)
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> logits (B, num_classes)."""
        return self.fc(self.dropout(self.features(x)))


@register_video_model("r2plus1d_tiny")
def r2plus1d_tiny(num_classes: int, **kwargs: Any) -> nn.Module:
    """Scaled-down R(2+1)D (CPU default); kwargs: widths, blocks, s_strides, t_strides, stem_width,
    dropout, mid."""
    for key in ("widths", "s_strides", "t_strides"):
        if key in kwargs and kwargs[key] is not None:
            kwargs[key] = tuple(int(v) for v in kwargs[key])
    return R2Plus1DTiny(num_classes, **kwargs)


# ----------------------------------------------------------------------------------------------
# torchvision video ResNets


class _TorchvisionVideo(nn.Module):
    """Wraps a torchvision video ResNet: exposes ``features`` and ``feature_dim``."""

    def __init__(self, net: nn.Module, num_classes: int, dropout: float = 0.0, clip_norm: bool = False) -> None:
        super().__init__()
        self.clip_norm = bool(clip_norm)
        self.feature_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> (B, feature_dim); with ``clip_norm`` each clip is first standardised."""
        return self.net(standardize_clips(x) if self.clip_norm else x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) -> logits (B, num_classes)."""
        return self.fc(self.dropout(self.features(x)))


def _torchvision(name: str, num_classes: int, dropout: float = 0.0, clip_norm: bool = False) -> nn.Module:
    from torchvision.models import video as tvv

    net = getattr(tvv, name)(weights=None)
    return _TorchvisionVideo(net, num_classes, dropout, clip_norm)


@register_video_model("r2plus1d_18")
def r2plus1d_18(num_classes: int, dropout: float = 0.0, clip_norm: bool = False) -> nn.Module:
    """torchvision R(2+1)D-18 (no pretrained weights unless given by path)."""
    return _torchvision("r2plus1d_18", num_classes, dropout, clip_norm)


@register_video_model("r3d_18")
def r3d_18(num_classes: int, dropout: float = 0.0, clip_norm: bool = False) -> nn.Module:
    """torchvision 3D-ResNet-18 (no pretrained weights unless given by path)."""
    return _torchvision("r3d_18", num_classes, dropout, clip_norm)
