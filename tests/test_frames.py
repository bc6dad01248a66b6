import subprocess

import numpy as np
import pytest

from finepseudo.frames import FrameExtractionError, decode_video, extract_shard, load_shards, sample_indices


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A real 30-frame H.264 clip from ffmpeg's test source."""
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=64x64:rate=25",
         "-frames:v", "30", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)],
        check=True,
    )
    return path


def test_sample_indices_uniform_and_within_range():
    idx = sample_indices(100, 4)
    assert idx.tolist() == [12, 37, 62, 87]
    assert sample_indices(100, 4, start=10, end=20).tolist() == [11, 13, 16, 18]
    assert sample_indices(3, 6).tolist() == [0, 0, 1, 1, 2, 2]  # short clips repeat frames


def test_decode_video(clip):
    frames = decode_video(clip, 32)
    assert frames.shape == (30, 32, 32, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # testsrc is colourful, not a blank frame


def test_corrupt_video_fails_with_its_path_or_is_skipped(clip, tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    videos = [("good", str(clip), 0, -1), ("bad", str(bad), 0, -1), ("gone", str(tmp_path / "nope.mp4"), 0, -1)]
    with pytest.raises(FrameExtractionError) as err:
        extract_shard(videos, num_frames=8, size=16, on_error="fail", log=lambda m: None)
    assert str(bad) in str(err.value) and "frames.on_error" in str(err.value)
    shard, status = extract_shard(videos, num_frames=8, size=16, on_error="skip", log=lambda m: None)
    assert shard["videos"] == ["good"] and tuple(shard["frames"].shape) == (1, 8, 16, 16, 3)
    assert [r["status"] for r in status] == ["ok", "failed", "failed"]
    assert "nope.mp4" in status[2]["reason"]


def test_shards_roundtrip(clip, tmp_path):
    import torch

    shard, _ = extract_shard([("a", str(clip), 0, 10), ("b", str(clip), 10, 30)], num_frames=4, size=16,
                             log=lambda m: None)
    torch.save(shard, tmp_path / "s.pt")
    frames, ids = load_shards([tmp_path / "s.pt"], ["b", "missing", "a"])
    assert ids == ["b", "a"] and tuple(frames.shape) == (2, 4, 16, 16, 3)
    assert not torch.equal(frames[0], frames[1])  # different frame ranges give different frames
