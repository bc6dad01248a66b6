import subprocess

import numpy as np
import pandas as pd
import pytest
import torch

from finepseudo.data.frames import (FrameExtractionError, FrameRangeError, FrameStore, decode_video, extract_shard,
                               index_path, read_index, sample_indices, write_index, write_shard)


def _ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *map(str, args)], check=True)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A real 30-frame H.264 clip from ffmpeg's test source."""
    path = tmp_path_factory.mktemp("v") / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-frames:v", "30", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", path)
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
    # a square source: the aspect-keeping crop and the squeeze give the same pixels
    assert np.array_equal(frames, decode_video(clip, 32, resize="squeeze"))


def test_crop_keeps_aspect_ratio(tmp_path):
    """A 2:1 video whose left and right quarters are black and centre white: the crop keeps the centre
    (all white), the squeeze keeps everything (a quarter black at each side)."""
    path = tmp_path / "wide.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=white:size=64x64:rate=25", "-f", "lavfi", "-i",
            "color=c=black:size=32x64:rate=25", "-filter_complex", "[1][0][1]hstack=inputs=3", "-frames:v", "3",
            "-pix_fmt", "yuv444p", "-c:v", "libx264", "-qp", "0", path)
    crop = decode_video(path, 16).astype(int)
    squeeze = decode_video(path, 16, resize="squeeze").astype(int)
    assert crop.shape == squeeze.shape == (3, 16, 16, 3)
    assert crop[:, :, 1:-1].min() > 200                     # centre crop: white everywhere
    assert squeeze[:, :, :3].max() < 60 and squeeze[:, :, -3:].max() < 60  # squeezed: black borders
    with pytest.raises(ValueError, match="frames.resize"):
        decode_video(path, 16, resize="stretch")


def test_seek_decodes_only_the_span(tmp_path):
    """frames 0-49 at 25 fps; [1.0, 1.4) s is frames 25-34, found by the frame number drawn in the video."""
    path = tmp_path / "count.mp4"
    # each frame's grey level encodes its number (5 * n)
    _ffmpeg("-f", "lavfi", "-i", "color=c=black:size=16x16:rate=25:duration=2", "-vf", "geq=lum='5*N':cb=128:cr=128",
            "-pix_fmt", "yuv444p", "-c:v", "libx264", "-qp", "0", "-g", "10", path)
    every = decode_video(path, 16)
    part = decode_video(path, 16, start_sec=1.0, end_sec=1.4)
    assert len(every) == 50 and len(part) == 10
    np.testing.assert_allclose(part[:, 8, 8, 0], every[25:35, 8, 8, 0], atol=2)
    with pytest.raises(FrameExtractionError, match="empty time span"):
        decode_video(path, 16, start_sec=1.0, end_sec=1.0)
    with pytest.raises(FrameExtractionError, match="no frame"):
        decode_video(path, 16, start_sec=5.0, end_sec=6.0)


def test_corrupt_video_fails_with_its_path_or_is_skipped(clip, tmp_path):
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    videos = [("good", str(clip), 0, -1), ("bad", str(bad), 0, -1), ("gone", str(tmp_path / "nope.mp4"), 0, -1)]
    with pytest.raises(FrameExtractionError) as err:
        extract_shard(videos, tmp_path / "f.npy", num_frames=8, size=16, on_error="fail", log=lambda m: None)
    assert str(bad) in str(err.value) and "frames.on_error" in str(err.value)
    assert not list(tmp_path.glob("f.npy*"))  # neither the shard nor a partial file is left behind
    status = extract_shard(videos, tmp_path / "s.npy", num_frames=8, size=16, on_error="skip", log=lambda m: None)
    write_index(index_path(tmp_path / "s.npy"), status)
    assert [r["status"] for r in status] == ["ok", "failed", "failed"]
    assert [r["row"] for r in status] == [0, -1, -1]
    assert "nope.mp4" in status[2]["reason"]
    store = FrameStore([tmp_path / "s.npy"])
    assert store.ids == ["good"] and store.shape == (1, 8, 16, 16, 3)


@pytest.fixture(scope="module")
def bad_videos(clip, tmp_path_factory):
    """One file per way a video can be unreadable, made with ffmpeg: a real mp4 cut to half its bytes (its
    index, the moov atom, is at the end and is lost), an empty file, an audio-only mp4 and a text file."""
    d = tmp_path_factory.mktemp("bad")
    data = clip.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "empty.mp4").write_bytes(b"")
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", d / "audio_only.mp4")
    (d / "not_a_video.mp4").write_text("These are my holiday notes, not a video.\n")
    return d


# what each message says besides the path, so that a user knows what is wrong with the file
BAD_KINDS = {"truncated": "truncated, damaged or not a video file", "empty": "empty (0 bytes)",
             "audio_only": "has no video stream", "not_a_video": "truncated, damaged or not a video file"}


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_unreadable_video_fails_naming_file_and_key_or_is_skipped_alone(clip, bad_videos, tmp_path, kind):
    bad = bad_videos / f"{kind}.mp4"
    with pytest.raises(FrameExtractionError) as err:
        decode_video(bad, 16)
    assert str(bad) in str(err.value) and BAD_KINDS[kind] in str(err.value)
    videos = [("a", str(clip), 0, 10), ("bad", str(bad), 0, -1), ("b", str(clip), 10, 30)]
    with pytest.raises(FrameExtractionError) as err:
        extract_shard(videos, tmp_path / "f.npy", num_frames=4, size=16, on_error="fail", log=lambda m: None)
    msg = str(err.value)
    assert str(bad) in msg and BAD_KINDS[kind] in msg
    assert "set frames.on_error: skip" in msg and "Fix or remove the file" in msg
    assert not list(tmp_path.glob("f.npy*"))
    logged = []
    status = extract_shard(videos, tmp_path / "s.npy", num_frames=4, size=16, on_error="skip", log=logged.append)
    write_index(index_path(tmp_path / "s.npy"), status)
    assert [r["status"] for r in status] == ["ok", "failed", "ok"]
    assert str(bad) in status[1]["reason"] and BAD_KINDS[kind] in status[1]["reason"]
    assert any(m.startswith("[extract] SKIPPED bad:") for m in logged)
    # the shard's other videos are intact: the frames the decoder gives for their ranges, in their rows
    store = FrameStore([tmp_path / "s.npy"])
    every = decode_video(clip, 16)
    assert store.ids == ["a", "b"]
    assert torch.equal(store[0], torch.from_numpy(every[sample_indices(30, 4, 0, 10)]))
    assert torch.equal(store[1], torch.from_numpy(every[sample_indices(30, 4, 10, 30)]))
    assert read_index(tmp_path / "s.npy")["warning"].tolist() == ["", "", ""]


def test_truncated_video_that_still_decodes_is_kept_with_a_warning(tmp_path):
    """An mp4 with its index at the front (faststart) and one key frame per frame, cut to half its bytes:
    ffmpeg decodes the frames before the cut and reports the damage. The video is kept, with a warning in
    the log and in its index row (its 30-frame annotation also runs past the frames that are left)."""
    whole = tmp_path / "whole.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x64:rate=25", "-frames:v", "30", "-pix_fmt", "yuv420p",
            "-c:v", "libx264", "-g", "1", "-movflags", "+faststart", whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    warnings = []
    frames = decode_video(cut, 16, warnings=warnings)
    assert 0 < len(frames) < 30
    assert len(warnings) == 1 and str(cut) in warnings[0] and "truncated or damaged file" in warnings[0]
    assert decode_video(whole, 16, warnings=warnings).shape[0] == 30 and len(warnings) == 1  # an intact file: none
    logged = []
    status = extract_shard([("cut", str(cut), 0, 30)], tmp_path / "s.npy", num_frames=4, size=16, log=logged.append)
    write_index(index_path(tmp_path / "s.npy"), status)
    row = read_index(tmp_path / "s.npy").iloc[0]
    assert row["status"] == "ok" and row["n_decoded"] == len(frames)
    assert "truncated or damaged file" in row["warning"] and "runs past the last frame" in row["warning"]
    assert sum(m.startswith("[extract] WARNING cut:") for m in logged) == 2


def test_frame_range_past_the_end_is_clamped_with_a_warning_or_fails(clip, tmp_path):
    """clip has 30 frames. [20, 40) is clamped to [20, 30) and kept with a warning (log and index); [35, 40)
    has no frame at all: it fails like an unreadable video (frames.on_error), naming the video and file."""
    logged = []
    videos = [("inside", str(clip), 0, 30), ("past", str(clip), 20, 40), ("after", str(clip), 35, 40)]
    status = extract_shard(videos, tmp_path / "s.npy", num_frames=4, size=16, on_error="skip", log=logged.append)
    write_index(index_path(tmp_path / "s.npy"), status)
    tab = read_index(tmp_path / "s.npy").set_index("video")
    assert tab["status"].to_dict() == {"inside": "ok", "past": "ok", "after": "failed"}  # what FrameStore and
    assert tab.loc["inside", "warning"] == ""  # the report filter on stays ok / failed
    warning = tab.loc["past", "warning"]
    assert "[20, 40) runs past the last frame" in warning and "30 frames decoded" in warning
    assert str(clip) in warning and "sampled from [20, 30)" in warning and "end_frame" in warning
    assert f"[extract] WARNING past: {warning}" in logged
    assert "video 'after'" in tab.loc["after", "reason"] and "starts after its last frame" in tab.loc["after", "reason"]
    store = FrameStore([tmp_path / "s.npy"])
    every = decode_video(clip, 16)
    assert store.ids == ["inside", "past"]
    assert torch.equal(store[1], torch.from_numpy(every[sample_indices(30, 4, 20, 30)]))
    with pytest.raises(FrameRangeError) as err:
        extract_shard(videos, tmp_path / "f.npy", num_frames=4, size=16, on_error="fail", log=lambda m: None)
    msg = str(err.value)
    assert "video 'after'" in msg and str(clip) in msg and "[35, 40)" in msg
    assert "start_frame / end_frame in the annotation" in msg and "frames.on_error: skip" in msg
    assert not list(tmp_path.glob("f.npy*"))


def test_index_without_warning_column_reads_as_no_warnings(tmp_path):
    np.save(tmp_path / "old.npy", np.zeros((1, 2, 4, 4, 3), np.uint8))
    pd.DataFrame({"video": ["x"], "status": ["ok"], "n_decoded": [2], "reason": [""], "row": [0]}).to_csv(
        index_path(tmp_path / "old.npy"), sep="\t", index=False)
    assert read_index(tmp_path / "old.npy")["warning"].tolist() == [""]
    assert FrameStore([tmp_path / "old.npy"]).ids == ["x"]


def test_shards_roundtrip(clip, tmp_path):
    status = extract_shard([("a", str(clip), 0, 10), ("b", str(clip), 10, 30)], tmp_path / "s.npy", num_frames=4,
                           size=16, log=lambda m: None)
    write_index(index_path(tmp_path / "s.npy"), status)
    assert [r["warning"] for r in status] == ["", ""]  # an intact file, ranges inside it: no warning
    store = FrameStore([tmp_path / "s.npy"], ["b", "missing", "a"])
    assert store.ids == ["b", "a"] and store.shape == (2, 4, 16, 16, 3)
    frames = store[[0, 1]]
    assert frames.dtype == torch.uint8 and tuple(frames.shape) == (2, 4, 16, 16, 3)
    assert not torch.equal(frames[0], frames[1])  # different frame ranges give different frames
    # the same pixels the decoder gives for those frames
    every = decode_video(clip, 16)
    assert torch.equal(frames[1], torch.from_numpy(every[sample_indices(30, 4, 0, 10)]))


@pytest.fixture()
def store_data(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(0, 256, size=(7, 6, 4, 4, 3), dtype=np.uint8)
    ids = [f"v{i}" for i in range(7)]
    write_shard(tmp_path / "a.npy", ids[:3], data[:3])
    write_shard(tmp_path / "b.npy", ids[3:], data[3:])
    return tmp_path, data, ids


def test_frame_store_indexes_like_the_tensor(store_data):
    d, data, ids = store_data
    t = torch.from_numpy(data)
    store = FrameStore([d / "a.npy", d / "b.npy"])
    assert len(store) == 7 and store.shape == tuple(t.shape) and store.ids == ids
    assert torch.equal(store[4], t[4]) and torch.equal(store[-1], t[-1])
    assert torch.equal(store[2:6], t[2:6]) and torch.equal(store[np.array([5, 0, 5])], t[[5, 0, 5]])
    assert torch.equal(store[torch.tensor([6, 1])], t[[6, 1]])
    idx = torch.tensor([1, 4, 6])
    t_idx = torch.tensor([[0, 2], [5, 5], [1, 3]])
    assert torch.equal(store[idx[:, None], t_idx], t[idx[:, None], t_idx])  # per-video frame indices
    t4 = torch.randint(0, 6, (3, 2, 2, 3))
    assert torch.equal(store[idx[:, None, None, None], t4], t[idx[:, None, None, None], t4])
    assert torch.equal(store[3, np.array([0, 5])], t[3, [0, 5]])
    assert torch.equal(store[idx, torch.tensor([1, 2])], t[idx][:, [1, 2]])  # one frame list for all
    assert tuple(store[[]].shape) == (0, 6, 4, 4, 3)
    with pytest.raises(IndexError):
        store[7]
    # a subset in another order, across shards
    sub = FrameStore([d / "a.npy", d / "b.npy"], ["v5", "v1", "zz"])
    assert sub.ids == ["v5", "v1"] and torch.equal(sub[[0, 1]], t[[5, 1]])


def test_frame_store_is_memory_mapped_and_survives_pickling(store_data):
    import pickle

    d, data, _ = store_data
    store = FrameStore([d / "a.npy", d / "b.npy"])
    store[0]
    assert all(isinstance(a, np.memmap) for a in store._arrays)  # read lazily, not loaded
    clone = pickle.loads(pickle.dumps(store))  # what DataLoader workers receive
    assert clone._arrays is None and torch.equal(clone[5], store[5])


def test_frame_store_refuses_pickles_and_names_bad_files(store_data, tmp_path):
    d, data, ids = store_data
    evil = tmp_path / "evil.npy"
    np.save(evil, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    write_index(index_path(evil), [{"video": "x", "status": "ok", "n_decoded": 1, "reason": "", "row": 0}])
    with pytest.raises(ValueError, match="evil.npy"):
        FrameStore([evil])
    with pytest.raises(FileNotFoundError, match="nope.npy"):
        FrameStore([tmp_path / "nope.npy"])
    np.save(tmp_path / "odd.npy", np.zeros((2, 3, 4, 4, 3), np.uint8))
    with pytest.raises(FileNotFoundError, match="odd.status.tsv"):
        FrameStore([tmp_path / "odd.npy"])
    write_index(index_path(tmp_path / "odd.npy"), [{"video": "x", "status": "ok", "n_decoded": 3, "reason": "", "row": 5}])
    with pytest.raises(ValueError, match="row 5"):
        FrameStore([tmp_path / "odd.npy"])
    with pytest.raises(ValueError, match="same frames.num_frames"):
        write_index(index_path(tmp_path / "odd.npy"), [{"video": "x", "status": "ok", "n_decoded": 3, "reason": "", "row": 1}])
        FrameStore([d / "a.npy", tmp_path / "odd.npy"])
    old = pd.DataFrame({"video": ["x"], "status": ["ok"], "n_decoded": [3], "reason": [""]})
    old.to_csv(index_path(tmp_path / "odd.npy"), sep="\t", index=False)
    with pytest.raises(ValueError, match="rerun extract_frames"):
        read_index(tmp_path / "odd.npy")
