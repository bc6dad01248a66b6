"""DistributedDataParallel training (fe.gpus; alignability.gpus: GITDL and AVML) on the CPU with the gloo
backend and 2 processes: the same loss curve as one process.

Tolerances: a model without batch norm or dropout sees the same global batches, the same augmentation
per clip and the global batch's gradient (summed in another order), so its per-epoch loss must match one
process to 1e-5 relative and its weights to 1e-6 (measured: 6e-8 and 1.5e-8). r2plus1d_tiny, whose
batch-norm statistics are per process on a CPU (SyncBatchNorm is used on GPUs only), must stay within 2 %
per epoch (measured: 0.7 % at most)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from finepseudo.models.distributed import train_classifier_ddp
from finepseudo.models.video import build_video_model
from finepseudo.models.train import train_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


class Plain(nn.Module):
    """No batch norm, no dropout: data-parallel training must equal one process."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3, stride=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3, 4)))


def _data():
    rng = np.random.default_rng(0)
    clips = torch.from_numpy(rng.integers(0, 256, size=(24, 8, 16, 16, 3)).astype(np.uint8))
    labels = np.arange(24) % 3
    clips[labels == 1, ..., 0] //= 2  # a learnable difference between classes
    return clips, labels


KW = dict(epochs=3, batch_size=8, lr=3e-3, weight_decay=0.01, clip_frames=4, seed=5, log=lambda m: None)


def _curves(make, **extra):
    clips, labels = _data()
    torch.manual_seed(0)
    one = make()
    two = make()
    two.load_state_dict(one.state_dict())
    h1 = train_classifier(one, clips, labels, **KW, **extra)
    h2 = train_classifier_ddp(two, clips, labels, world_size=2, **KW, **extra)
    return one, two, np.array([h["loss"] for h in h1]), np.array([h["loss"] for h in h2]), h1, h2


def test_ddp_equals_one_process_without_batch_norm():
    weights = np.linspace(0.2, 1.0, 24)
    one, two, l1, l2, h1, h2 = _curves(Plain, sample_weight=weights)
    np.testing.assert_allclose(l2, l1, rtol=1e-5)
    for k, v in one.state_dict().items():
        torch.testing.assert_close(two.state_dict()[k], v, rtol=0, atol=1e-6)
    assert not torch.equal(one.fc.weight, Plain().fc.weight)  # it trained


def test_ddp_loss_curve_of_the_video_model_within_tolerance():
    def make():
        return build_video_model("r2plus1d_tiny", 3, widths=(8, 16), s_strides=(2, 2), t_strides=(1, 2), stem_width=8)

    _, two, l1, l2, _, _ = _curves(make)
    assert np.all(np.abs(l2 - l1) / l1 < 0.02), (l1, l2)
    assert l1[-1] < l1[0]  # the curve the two must match is a training curve


def test_ddp_skips_batches_smaller_than_the_world():
    """25 videos in batches of 8: each pass ends with a 1-video batch, which 2 processes cannot split; they
    both skip it instead of hanging or failing, and training still runs to the end."""
    clips, labels = _data()
    clips = torch.cat([clips, clips[:1]])
    labels = np.concatenate([labels, labels[:1]])
    torch.manual_seed(0)
    model = Plain()
    before = model.fc.weight.detach().clone()
    hist = train_classifier_ddp(model, clips, labels, world_size=2, **KW)
    assert len(hist) == 3 and all(h["clips_per_s"] > 0 for h in hist)
    assert not torch.equal(model.fc.weight, before)


def test_gitdl_in_two_processes_matches_one():
    """GITDL (alignability.gpus): every process builds both views of the whole batch and encodes its rows.
    f_A's frame CNN has batch norm over a handful of frames, per process on a CPU (PyTorch's SyncBatchNorm
    needs a GPU), so even the first step's loss differs: the curve must stay within 10 % of one process
    (measured: up to 6 % for batches of 8 to 12 videos), decrease, and move the weights."""
    from finepseudo.align.train import pretrain_gitdl, pretrain_gitdl_ddp

    clips, _ = _data()
    kw = dict(num_frames=4, dim=8, width=4, layers=0, pool=1, epochs=2, batch_size=8, lr=1e-2, tau=0.1, sigma=1.0,
              seed=3)
    m1, h1 = pretrain_gitdl(clips, log=lambda m: None, **kw)
    m2, h2 = pretrain_gitdl_ddp(clips, world_size=2, log=lambda m: None, **kw)
    l1, l2 = np.array([h["loss"] for h in h1]), np.array([h["loss"] for h in h2])
    assert np.all(np.abs(l2 - l1) / l1 < 0.10), (l1, l2)
    assert l2[1] < l2[0] and [h["epoch"] for h in h2] == [1, 2]
    w1, w2 = m1.state_dict(), m2.state_dict()
    assert set(w1) == set(w2)
    torch.manual_seed(3)
    from finepseudo.align.alignability import FrameEncoder

    init = FrameEncoder(dim=8, width=4, layers=0, pool=1).state_dict()
    assert any(not torch.equal(w2[k], init[k]) for k in init if init[k].is_floating_point())


class PlainFrames(nn.Module):
    """A frame-wise encoder (uint8 (B, T, H, W, 3) -> (B, T, F)) without batch norm: AVML in several processes
    must equal one process."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.proj = nn.Linear(8, 6)

    def forward(self, x):
        b, t = x.shape[:2]
        f = x.flatten(0, 1).permute(0, 3, 1, 2).float() / 255
        return self.proj(torch.relu(self.conv(f)).mean(dim=(2, 3))).view(b, t, -1)


AVML = dict(num_frames=4, epochs=2, lr=1e-2, gamma=0.1, margin=0.5, omega=1.0, use_triplet=True, use_score=True,
            seed=7)


def _avml_pair(make, batch_size, score=None, **over):
    """Train two copies of one initial f_A (and f_S) with AVML, in one process and in two."""
    from finepseudo.align.train import train_avml, train_avml_ddp

    clips, labels = _data()
    hard_negative = (np.arange(24) + 1) % 24  # a video of another class for each
    torch.manual_seed(0)
    one = make()
    two = make()
    two.load_state_dict(one.state_dict())
    s1 = s2 = None
    if score is not None:
        s1, s2 = score(), score()
        s2.load_state_dict(s1.state_dict())
    kw = {**AVML, **over}
    r1 = train_avml(one, clips, labels, hard_negative, batch_size=batch_size, score=s1, log=lambda m: None, **kw)
    r2 = train_avml_ddp(two, clips, labels, hard_negative, world_size=2, batch_size=batch_size, score=s2,
                        log=lambda m: None, **kw)
    return r1, r2


def test_avml_in_two_processes_equals_one_without_batch_norm():
    """AVML (alignability.gpus) couples the whole batch through its in-batch hardest negatives: each process
    encodes its rows of the views and gathers the others', so without batch norm the loss curve, f_A and f_S
    must equal one process (float sums in another order: 1e-5). Batches of 7 anchors give 21 views, which two
    processes split unevenly (11 + 10), and a 3-anchor last batch. The rounds' case (an existing f_S) too."""
    from finepseudo.align.alignability import ScoreHead

    for score in (None, ScoreHead):
        (f1, s1, h1), (f2, s2, h2) = _avml_pair(PlainFrames, 7, score)
        assert [h["epoch"] for h in h2] == [1, 2]
        for key in ("loss", "l_at", "l_score", "d_ap", "d_an"):
            np.testing.assert_allclose([h[key] for h in h2], [h[key] for h in h1], rtol=1e-5, err_msg=key)
        for a, b in ((f1, f2), (s1, s2)):
            for k, v in a.state_dict().items():
                torch.testing.assert_close(b.state_dict()[k], v, rtol=0, atol=1e-6)
        torch.manual_seed(0)
        assert not torch.equal(f2.proj.weight, PlainFrames().proj.weight)  # it trained


def test_avml_of_the_frame_encoder_in_two_processes_within_tolerance():
    """The real f_A, whose frame CNN's batch norm is per process on a CPU (SyncBatchNorm on GPUs): the curve
    must stay within 5 % of one process (measured at this learning rate: 2.3 % at most over seeds 7 and 8;
    at lr 1e-2 the two runs drift apart by up to 14 % in epoch 2, as much as changing the seed moves one
    run), decrease, and move the weights."""
    from finepseudo.align.alignability import FrameEncoder

    def make():
        return FrameEncoder(dim=8, width=4, layers=0, pool=1)

    (f1, _, h1), (f2, _, h2) = _avml_pair(make, 8, lr=3e-3)
    l1, l2 = np.array([h["loss"] for h in h1]), np.array([h["loss"] for h in h2])
    assert np.all(np.abs(l2 - l1) / l1 < 0.05), (l1, l2)
    assert l2[1] < l2[0]
    torch.manual_seed(0)
    init = make().state_dict()
    assert any(not torch.equal(f2.state_dict()[k], init[k]) for k in init if init[k].is_floating_point())
