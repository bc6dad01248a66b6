"""Video model registry: shapes, residual init, weights from a file (never downloaded)."""

from __future__ import annotations

import pytest
import torch

from finepseudo.models import video as models
from finepseudo.models.video import build_video_model, list_video_models


pytestmark = pytest.mark.usefixtures("one_thread")


def test_registry_lists_required_archs():
    assert {"r2plus1d_tiny", "r2plus1d_18", "r3d_18"} <= set(list_video_models())
    with pytest.raises(KeyError, match="unknown video model"):
        build_video_model("resnet_nonexistent", 3)


def test_tiny_shapes_and_features():
    torch.manual_seed(0)
    m = build_video_model("r2plus1d_tiny", 7).eval()
    x = torch.randn(2, 3, 16, 48, 48)
    with torch.no_grad():
        assert m(x).shape == (2, 7)
        assert m.features(x).shape == (2, m.feature_dim)
        # other clip lengths and sizes work too (global pooling)
        assert m(torch.randn(1, 3, 8, 32, 32)).shape == (1, 7)


def test_tiny_is_residual_two_blocks_per_stage_zero_init():
    m = build_video_model("r2plus1d_tiny", 5, widths=(8, 16), s_strides=(2, 2), t_strides=(1, 2))
    blocks = [b for b in m.modules() if isinstance(b, models.Block2Plus1D)]
    assert len(blocks) == 4 and all(len(stage) == 2 for stage in m.stages)
    assert all(torch.count_nonzero(b.bn2.weight) == 0 for b in blocks)
    # (2+1)D: every conv in a block is either purely spatial (1, k, k) or purely temporal (k, 1, 1)
    for b in blocks:
        for conv in (c for c in b.modules() if isinstance(c, torch.nn.Conv3d) and c.kernel_size != (1, 1, 1)):
            kt, kh, kw = conv.kernel_size
            assert (kt == 1) != (kh == 1 and kw == 1)
    # zero-initialised residual branch: an identity block passes ReLU(x) through unchanged
    same = next(b for b in blocks if isinstance(b.down, torch.nn.Identity)).eval()
    x = torch.randn(1, same.conv1[0].in_channels, 4, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(same(x), torch.relu(x))


def test_tiny_mid_width_option():
    matched = build_video_model("r2plus1d_tiny", 5, mid="matched")
    cheap = build_video_model("r2plus1d_tiny", 5)  # default: mid = "out"
    assert sum(p.numel() for p in cheap.parameters()) < sum(p.numel() for p in matched.parameters())
    assert cheap.stages[0][0].conv1[0].out_channels == 16  # spatial conv straight to the block width
    with torch.no_grad():
        assert cheap.eval()(torch.randn(1, 3, 16, 48, 48)).shape == (1, 5)
    with pytest.raises(ValueError, match="mid"):
        build_video_model("r2plus1d_tiny", 5, mid="wide")


@pytest.mark.parametrize("arch", ["r2plus1d_18", "r3d_18"])
def test_torchvision_archs_tiny_input(arch):
    torch.manual_seed(0)
    m = build_video_model(arch, 4).eval()
    with torch.no_grad():
        out = m(torch.randn(1, 3, 4, 16, 16))
    assert out.shape == (1, 4)
    assert m.feature_dim == 512


def test_weights_from_file(tmp_path):
    torch.manual_seed(0)
    src = build_video_model("r2plus1d_tiny", 6, widths=(8, 16), s_strides=(2, 2), t_strides=(1, 2)).eval()
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    torch.manual_seed(1)
    dst = build_video_model("r2plus1d_tiny", 6, weights=str(path), widths=(8, 16), s_strides=(2, 2),
                            t_strides=(1, 2)).eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst(x), src(x))
    # a head of another size is skipped, the backbone is loaded
    other = build_video_model("r2plus1d_tiny", 3, weights=path, widths=(8, 16), s_strides=(2, 2),
                              t_strides=(1, 2)).eval()
    with torch.no_grad():
        torch.testing.assert_close(other.features(x), src.features(x))
    # a checkpoint dict holding the state dict works too
    torch.save({"state_dict": src.state_dict(), "arch": "r2plus1d_tiny"}, tmp_path / "c.pt")
    build_video_model("r2plus1d_tiny", 6, weights=tmp_path / "c.pt", widths=(8, 16), s_strides=(2, 2),
                      t_strides=(1, 2))


def test_missing_weights_file_is_named(tmp_path):
    missing = tmp_path / "kinetics_r2plus1d.pt"
    with pytest.raises(FileNotFoundError, match="kinetics_r2plus1d.pt"):
        build_video_model("r3d_18", 4, weights=str(missing))


def test_mismatched_weights_are_an_error(tmp_path):
    a = build_video_model("r2plus1d_tiny", 4, widths=(8, 16), s_strides=(2, 2), t_strides=(1, 2))
    torch.save(a.state_dict(), tmp_path / "a.pt")
    with pytest.raises(RuntimeError, match="do not match"):
        build_video_model("r2plus1d_tiny", 4, weights=tmp_path / "a.pt", widths=(8, 16, 32), s_strides=(2, 2, 2),
                          t_strides=(1, 2, 2))


def test_registry_names_every_video_model_and_method_branch():
    """The names the schema and the workflow read (finepseudo.registry) match the model constructors and the
    pseudo-labeling sources the steps implement."""
    from finepseudo import registry
    from finepseudo.models import video as models

    assert sorted(registry.VIDEO_ARCHS) == models.list_video_models()
    assert {m.source for m in registry.PSEUDO_METHODS.values()} == {"fe", "fa", "both"}
    for name, m in registry.PSEUDO_METHODS.items():
        assert (m.avml is None) == (m.source == "fe"), name
    assert set(registry.METHODS) == set(registry.SUPERVISED_METHODS) | set(registry.PSEUDO_METHODS) - {
        "finepseudo_no_filter"}


def test_clip_norm_removes_a_videos_global_colour():
    """fe.clip_norm / alignability.clip_norm: a per-channel gain and offset of a whole clip (a hall's wall
    colour, lighting) leaves the output unchanged; without it the output moves."""
    from finepseudo.align.alignability import FrameEncoder
    from finepseudo.models.video import build_video_model, standardize_clips

    torch.manual_seed(0)
    x = torch.rand(2, 3, 8, 24, 24)
    gain = torch.tensor([0.5, 1.5, 0.8]).view(1, 3, 1, 1, 1)
    bias = torch.tensor([0.3, -0.2, 0.1]).view(1, 3, 1, 1, 1)
    z = standardize_clips(x)
    assert torch.allclose(z.mean(dim=(2, 3, 4)), torch.zeros(2, 3), atol=1e-5)
    for norm, same in ((True, True), (False, False)):
        torch.manual_seed(1)
        m = build_video_model("r2plus1d_tiny", 4, widths=(8, 8, 8), stem_width=8, clip_norm=norm).eval()
        with torch.no_grad():
            a, b = m(x), m(x * gain + bias)
        assert torch.allclose(a, b, atol=1e-3) == same
    frames = (torch.rand(2, 6, 24, 24, 3) * 120 + 40).to(torch.uint8)
    shifted = (frames.float() * torch.tensor([1.3, 0.9, 1.1]) + torch.tensor([10.0, -20.0, 5.0])).round().to(torch.uint8)
    torch.manual_seed(2)
    fa = FrameEncoder(dim=16, width=8, clip_norm=True).eval()
    with torch.no_grad():
        assert (fa(frames) - fa(shifted)).abs().max().item() < 0.02  # uint8 rounding only
