"""The dataset adapters on small fixtures written in each dataset's official layout: FineGym (element
lists, categories, temporal annotation JSON, raw or event videos cut by seeking), FineDiving (annotation
pickles read without running code, frame folders) and Diving48 V2 paths."""

from __future__ import annotations

import json
import os
import pickle
import re
import subprocess

import numpy as np
import pytest

from finepseudo.data import safe_pickle
from finepseudo.data.datasets import AnnotationError, build_manifest_for
from finepseudo.data.frames import FrameStore, extract_shard, index_path, write_index

FPS = 10


def _video(path, seconds, size=32):
    """A video whose frame n has grey level 2 n (mod 256): its frames tell where a cut came from."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"color=c=black:size={size}x{size}:rate={FPS}:duration={seconds}", "-vf",
                    "geq=lum='mod(2*N,256)':cb=128:cr=128", "-pix_fmt", "yuv444p", "-c:v", "libx264", "-qp", "0",
                    "-g", "20", str(path)], check=True)


def _grey(frames):
    return frames[:, :, :, :, 0].reshape(frames.shape[0], frames.shape[1], -1).mean(-1)


# ----------------------------------------------------------------------------------------------- FineGym

YT = "x_Ab-3_cD9k"  # YouTube ids may contain '_' and '-'


@pytest.fixture(scope="module")
def finegym(tmp_path_factory):
    root = tmp_path_factory.mktemp("finegym")
    (root / "videos").mkdir()
    (root / "events").mkdir()
    _video(root / "videos" / f"{YT}.mp4", 30)
    # two events of the raw video: [4, 14) s and [16, 28) s; elements inside them (seconds of the event)
    info = {YT: {
        "E_000004_000014": {"event": 1, "timestamps": [[4.0, 14.0]], "segments": {
            "A_0001_0003": {"stages": 1, "timestamps": [[1.0, 3.0]]},
            "A_0005_0008": {"stages": 2, "timestamps": [[5.0, 6.5], [6.5, 8.0]]}}},
        "E_000016_000028": {"event": 2, "timestamps": [[16.0, 28.0]], "segments": {
            "A_0002_0004": {"stages": 1, "timestamps": [[2.0, 4.0]]}}},
        "E_000029_000030": {"event": 2, "timestamps": [[29.0, 30.0]], "segments": None},
    }}
    (root / "finegym_annotation_info_v1.1.json").write_text(json.dumps(info))
    (root / "gym99_categories.txt").write_text(
        "Clabel: 0; set: 1; Glabel: 1; (VT) round-off, flic-flac with 0.5 turn on\n"
        "Clabel: 1; set: 1; Glabel: 3; (VT) round-off, flic-flac on, stretched salto backward\n"
        "Clabel: 2; set: 21; Glabel: 67; (FX) switch leap with 0.5 turn\n")
    (root / "gym99_train_element_v1.1.txt").write_text(
        f"{YT}_E_000004_000014_A_0001_0003 0\n{YT}_E_000016_000028_A_0002_0004 2\n")
    (root / "gym99_val_element.txt").write_text(f"{YT}_E_000004_000014_A_0005_0008 1\n")
    # event videos as cut beforehand (mmaction2's trim_event), for source: event
    for ev, (s, e) in (("E_000004_000014", (4, 14)), ("E_000016_000028", (16, 28))):
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", str(s), "-t", str(e - s), "-i",
                        str(root / "videos" / f"{YT}.mp4"), "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p",
                        str(root / "events" / f"{YT}_{ev}.mp4")], check=True)
    return root


def _gym_files(root, **over):
    files = {"train_annotations": root / "gym99_train_element_v1.1.txt", "test_annotations": root / "gym99_val_element.txt",
             "vocab": root / "gym99_categories.txt", "timestamps": root / "finegym_annotation_info_v1.1.json"}
    return {**files, **over}


@pytest.mark.parametrize("source", ["raw", "event"])
def test_finegym_elements_are_cut_by_seeking(finegym, tmp_path, source):
    videos = finegym / ("videos" if source == "raw" else "events")
    m, names = build_manifest_for("finegym", _gym_files(finegym), videos, num_shards=1, source=source)
    assert names[2] == "(FX) switch leap with 0.5 turn" and len(names) == 3
    assert sorted(m["split"]) == ["test", "train", "train"]
    row = m.set_index("video").loc[f"{YT}_E_000004_000014_A_0005_0008"]
    assert row["label"] == 1 and row["split"] == "test"
    # the element's span: first stage start to last stage end, in the raw video or in the event video
    expect = (9.0, 12.0) if source == "raw" else (5.0, 8.0)
    assert (row["start_sec"], row["end_sec"]) == expect
    videos_rows = list(m[["video", "path", "start_frame", "end_frame", "start_sec", "end_sec"]].itertuples(index=False,
                                                                                                          name=None))
    status = extract_shard(videos_rows, tmp_path / "s.npy", num_frames=4, size=16, log=lambda s: None)
    write_index(index_path(tmp_path / "s.npy"), status)
    store = FrameStore([tmp_path / "s.npy"])
    assert sorted(r["n_decoded"] for r in status) == [20, 20, 30]  # 2 s, 2 s and 3 s at 10 fps
    assert [r["warning"] for r in status] == ["", "", ""]  # seeking into intact files: no warning
    grey = _grey(store[store.ids.index(f"{YT}_E_000004_000014_A_0005_0008")][None].numpy().astype(float))[0]
    # frames 90..119 of the raw video (9 s to 12 s), sampled at the centres of 4 bins: luma 2 n, which RGB
    # conversion (limited range) maps to (2 n - 16) * 255 / 219
    n = 90 + np.array([3, 11, 18, 26])
    np.testing.assert_allclose(grey, (2 * n - 16) * 255 / 219, atol=3)


def test_finegym_bad_annotations_name_the_file_and_line(finegym, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{YT}_E_000004_000014_A_0001_0003 7\n")
    with pytest.raises(AnnotationError, match=r"bad.txt, line 1 .*label 7"):
        build_manifest_for("finegym", _gym_files(finegym, train_annotations=bad), finegym / "videos", num_shards=1)
    bad.write_text(f"{YT}_E_000004_000099_A_0001_0003 0\n")
    with pytest.raises(AnnotationError, match="no event"):
        build_manifest_for("finegym", _gym_files(finegym, train_annotations=bad), finegym / "videos", num_shards=1)
    bad.write_text(f"{YT}_E_000029_000030_A_0000_0001 0\n")  # an event without segments
    with pytest.raises(AnnotationError, match="no timestamps for segment A_0000_0001"):
        build_manifest_for("finegym", _gym_files(finegym, train_annotations=bad), finegym / "videos", num_shards=1)
    bad.write_text("not an element line\n")
    with pytest.raises(AnnotationError, match="line 1"):
        build_manifest_for("finegym", _gym_files(finegym, train_annotations=bad), finegym / "videos", num_shards=1)
    cats = tmp_path / "cats.txt"
    cats.write_text("Clabel: 0; set: 1; Glabel: 1; a\nClabel: 2; set: 1; Glabel: 2; b\n")
    with pytest.raises(AnnotationError, match="without gaps"):
        build_manifest_for("finegym", _gym_files(finegym, vocab=cats), finegym / "videos", num_shards=1)
    with pytest.raises(AnnotationError, match="dataset.timestamps"):
        build_manifest_for("finegym", _gym_files(finegym, timestamps=None), finegym / "videos", num_shards=1)
    with pytest.raises(AnnotationError, match="have no file"):  # the raw videos are not in the events folder
        build_manifest_for("finegym", _gym_files(finegym), finegym / "events", num_shards=1, source="raw")


E1 = f"{YT}_E_000004_000014_A_0001_0003"
E2 = f"{YT}_E_000004_000014_A_0005_0008"


def _info_with(event_patch=None, segment_patch=None, top=None):
    info = {YT: {"E_000004_000014": {"event": 1, "timestamps": [[4.0, 14.0]], "segments": {
        "A_0001_0003": {"stages": 1, "timestamps": [[1.0, 3.0]]},
        "A_0005_0008": {"stages": 2, "timestamps": [[5.0, 6.5], [6.5, 8.0]]}}}}}
    ev = info[YT]["E_000004_000014"]
    ev.update(event_patch or {})
    ev["segments"]["A_0001_0003"].update(segment_patch or {})
    return json.dumps(info if top is None else top)


@pytest.mark.parametrize("key, text, words", [
    ("train_annotations", f"{E1} 0\n{E1} 0\n", ["bad.txt, line 2", E1, "listed twice"]),
    ("train_annotations", f"{E1} -1\n", ["bad.txt, line 1", E1, "label -1 is outside the 3 categories"]),
    ("train_annotations", f"{E1} one\n", ["bad.txt, line 1", "expected '<element id> <label>'"]),
    ("train_annotations", "\n", ["bad.txt", "element list is empty"]),
    ("train_annotations", f"{E2} 1\n", [E2, "appears in both", "bad.txt", "gym99_val_element.txt"]),
    ("vocab", "Clabel: 0; set: 1; Glabel: 1; a\nClabel: 0; set: 1; Glabel: 2; b\n", ["bad.txt, line 2",
                                                                                     "Clabel 0 appears twice"]),
    ("vocab", "Clabel 0: a\n", ["bad.txt, line 1", "expected 'Clabel: <k>; set: <s>; Glabel: <g>; <name>'"]),
    ("timestamps", "{not json", ["bad.txt is not valid JSON"]),
    ("timestamps", _info_with(top=[1, 2]), ["bad.txt", "expected a JSON object keyed by YouTube id", "list"]),
    ("timestamps", _info_with({"timestamps": "4 to 14"}), ["bad.txt", E1, "event E_000004_000014 has no [start, end]"]),
    ("timestamps", _info_with({"timestamps": [[14.0, 4.0]]}), ["bad.txt", E1, "bad time span [14.0, 4.0)"]),
    ("timestamps", _info_with(segment_patch={"timestamps": [[3.0, 1.0]]}), ["bad.txt", E1,
                                                                          "bad element time span [3.0, 1.0)"]),
    ("timestamps", _info_with(segment_patch={"timestamps": [[-1.0, 1.0]]}), ["bad.txt", E1,
                                                                           "bad element time span [-1.0, 1.0)"]),
    ("timestamps", _info_with(segment_patch={"timestamps": "soon"}), ["bad.txt", E1, "no timestamps for segment"]),
])
def test_finegym_malformed_files_name_the_file_entry_and_fault(finegym, tmp_path, key, text, words):
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    with pytest.raises(AnnotationError) as err:
        build_manifest_for("finegym", _gym_files(finegym, **{key: bad}), finegym / "videos", num_shards=1)
    for w in words:
        assert w in str(err.value)


def test_finegym_paths_that_leave_the_dataset_are_refused(finegym, tmp_path):
    """An element id whose video part holds '..', or whose video is a symbolic link to a file outside."""
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "lnk.mp4").symlink_to(finegym / "videos" / f"{YT}.mp4")
    event = json.loads(_info_with())[YT]
    info = tmp_path / "info.json"
    info.write_text(json.dumps({"../videos2/up": event, "lnk": event}))
    for vid in ("../videos2/up", "lnk"):
        lst = tmp_path / "list.txt"
        lst.write_text(f"{vid}_E_000004_000014_A_0001_0003 0\n")
        test = tmp_path / "test.txt"
        test.write_text(f"{vid}_E_000004_000014_A_0005_0008 1\n")
        files = _gym_files(finegym, train_annotations=lst, test_annotations=test, timestamps=info)
        with pytest.raises(AnnotationError, match=f"'{re.escape(vid)}_E_000004_000014_A_.*leaves the dataset folder"):
            build_manifest_for("finegym", files, videos, num_shards=1)


# -------------------------------------------------------------------------------------------- FineDiving

COMP = "FINADivingWorldCup2021_Men3m_final_r1"


@pytest.fixture()
def finediving(tmp_path):
    root = tmp_path / "FineDiving"
    frames = root / "FINADiving_MTL_256s"
    coarse, fine = {}, {}
    for clip, (dive, first, n) in enumerate([("107B", 489, 12), ("5253B", 1200, 9), ("107B", 3000, 10)]):
        folder = frames / COMP / str(clip)
        folder.mkdir(parents=True)
        # frames named by their number in the competition video, 256 x 340 like the official ones; frame
        # first + k has luma 10 k
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                        "color=c=black:size=340x256:rate=25", "-vf", "geq=lum='10*N':cb=128:cr=128,format=yuvj444p",
                        "-frames:v", str(n), "-q:v", "1", "-start_number", str(first), str(folder / "%05d.jpg")],
                       check=True)
        key = (COMP, clip)
        coarse[key] = {"action_type": dive, "dive_score": 60.0 + clip, "difficulty": np.float64(3.0),
                       "judge_scores": [7.0, 7.5, 7.0], "start_frame": first, "end_frame": first + n - 1}
        fine[key] = {"action_type": dive, "frames_labels": np.arange(n) % 3, "steps_transit_frames": np.array([3., 6.]),
                     "sub-action_types": {0: "Forward", 1: "3.5 Soms.Pike"}}
    ann = root / "Annotations"
    ann.mkdir()
    for name, obj in (("FineDiving_coarse_annotation.pkl", coarse), ("FineDiving_fine-grained_annotation.pkl", fine),
                      ("train_split.pkl", [(COMP, 0), (COMP, 1)]), ("test_split.pkl", [(COMP, 2)])):
        (ann / name).write_bytes(pickle.dumps(obj))
    return root


def _dive_files(root, **over):
    ann = root / "Annotations"
    files = {"train_annotations": ann / "train_split.pkl", "test_annotations": ann / "test_split.pkl",
             "coarse_annotations": ann / "FineDiving_coarse_annotation.pkl",
             "fine_annotations": ann / "FineDiving_fine-grained_annotation.pkl"}
    return {**files, **over}


def test_finediving_reads_pickles_and_frame_folders(finediving, tmp_path):
    m, names = build_manifest_for("finediving", _dive_files(finediving), finediving / "FINADiving_MTL_256s",
                                  num_shards=1)
    assert names == ["107B", "5253B"]
    assert m.set_index("video")["label"].to_dict() == {f"{COMP}__0": 0, f"{COMP}__1": 1, f"{COMP}__2": 0}
    assert m.set_index("video").loc[f"{COMP}__2", "split"] == "test"
    rows = list(m[["video", "path", "start_frame", "end_frame"]].itertuples(index=False, name=None))
    status = extract_shard(rows, tmp_path / "s.npy", num_frames=4, size=32, log=lambda s: None)
    write_index(index_path(tmp_path / "s.npy"), status)
    assert {r["video"]: r["n_decoded"] for r in status} == {f"{COMP}__0": 12, f"{COMP}__1": 9, f"{COMP}__2": 10}
    assert [r["warning"] for r in status] == ["", "", ""]
    store = FrameStore([tmp_path / "s.npy"], [f"{COMP}__0"])
    grey = _grey(store[[0]].numpy().astype(float))[0]
    k = np.array([1, 4, 7, 10])  # frames 1, 4, 7, 10 of 12; luma 10 k in limited range, as RGB:
    np.testing.assert_allclose(grey, np.clip((10 * k - 16) * 255 / 219, 0, None), atol=3)


def test_finediving_refuses_pickles_that_run_code(finediving, tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = finediving / "Annotations" / "train_split.pkl"
    evil.write_bytes(pickle.dumps([(COMP, 0), Evil()]))
    with pytest.raises(AnnotationError, match=r"train_split.pkl references posix.system"):
        build_manifest_for("finediving", _dive_files(finediving), finediving / "FINADiving_MTL_256s", num_shards=1)
    assert not (tmp_path / "pwned").exists()
    with pytest.raises(safe_pickle.UnsafePickleError, match="evil"):
        safe_pickle.loads(pickle.dumps(Evil()), "evil")
    # plain data with numpy arrays and scalars loads
    data = {("a", 1): {"x": np.arange(3), "y": np.float32(2.5), "z": {1, 2}}}
    back = safe_pickle.loads(pickle.dumps(data))
    assert back[("a", 1)]["x"].tolist() == [0, 1, 2] and back[("a", 1)]["y"] == 2.5


def test_finediving_bad_annotations(finediving):
    ann = finediving / "Annotations"
    frames = finediving / "FINADiving_MTL_256s"
    fine = pickle.loads((ann / "FineDiving_fine-grained_annotation.pkl").read_bytes())
    del fine[(COMP, 1)]
    (ann / "fine.pkl").write_bytes(pickle.dumps(fine))
    with pytest.raises(AnnotationError, match=r"fine.pkl: clip \('FINADiving.*', 1\) of the train split is missing"):
        build_manifest_for("finediving", _dive_files(finediving, fine_annotations=ann / "fine.pkl"), frames, num_shards=1)
    (ann / "split.pkl").write_bytes(pickle.dumps([(COMP, 2)]))
    with pytest.raises(AnnotationError, match="in both"):
        build_manifest_for("finediving", _dive_files(finediving, train_annotations=ann / "split.pkl"), frames,
                           num_shards=1)
    (ann / "split.pkl").write_bytes(pickle.dumps([("../../etc", 0)]))
    coarse = pickle.loads((ann / "FineDiving_coarse_annotation.pkl").read_bytes())
    coarse[("../../etc", 0)] = coarse[(COMP, 0)]
    fine = pickle.loads((ann / "FineDiving_fine-grained_annotation.pkl").read_bytes())
    fine[("../../etc", 0)] = fine[(COMP, 0)]
    (ann / "c.pkl").write_bytes(pickle.dumps(coarse))
    (ann / "f.pkl").write_bytes(pickle.dumps(fine))
    with pytest.raises(AnnotationError, match="leaves the dataset folder"):
        build_manifest_for("finediving", _dive_files(finediving, train_annotations=ann / "split.pkl",
                                                     coarse_annotations=ann / "c.pkl", fine_annotations=ann / "f.pkl"),
                           frames, num_shards=1)


@pytest.mark.parametrize("name, obj, words", [
    ("train_split.pkl", {"a": 1}, ["train_split.pkl", "must hold a list of (competition, clip index)"]),
    ("train_split.pkl", [], ["train_split.pkl", "split list is empty", "dataset.train_annotations"]),
    ("train_split.pkl", [(COMP, 0), (COMP, "1")], ["train_split.pkl, entry 1", "expected (competition, clip index)"]),
    ("train_split.pkl", [(COMP, 0), (COMP, 1), (COMP, 0)], ["train_split.pkl, entry 2", f"('{COMP}', 0)",
                                                            "listed twice"]),
    ("FineDiving_coarse_annotation.pkl", [1, 2], ["FineDiving_coarse_annotation.pkl", "must be a dict"]),
    ("FineDiving_coarse_annotation.pkl", "no action type", ["FineDiving_coarse_annotation.pkl", f"('{COMP}', 0)",
                                                            "has no action_type", "None"]),
    ("FineDiving_coarse_annotation.pkl", "wrong action type", ["FineDiving_coarse_annotation.pkl",
                                                               "FineDiving_fine-grained_annotation.pkl",
                                                               f"('{COMP}', 0)", "'405B'", "'107B'"]),
])
def test_finediving_malformed_files_name_the_file_entry_and_fault(finediving, name, obj, words):
    ann = finediving / "Annotations"
    if isinstance(obj, str):  # an edit of clip 0 in the official coarse annotation
        coarse = pickle.loads((ann / name).read_bytes())
        if obj == "no action type":
            del coarse[(COMP, 0)]["action_type"]
        else:
            coarse[(COMP, 0)]["action_type"] = "405B"
        obj = coarse
    (ann / name).write_bytes(pickle.dumps(obj))
    with pytest.raises(AnnotationError) as err:
        build_manifest_for("finediving", _dive_files(finediving), finediving / "FINADiving_MTL_256s", num_shards=1)
    for w in words:
        assert w in str(err.value)


def test_finediving_frame_folder_linked_outside_is_refused(finediving, tmp_path):
    frames = finediving / "FINADiving_MTL_256s"
    outside = tmp_path / "elsewhere"
    (frames / COMP / "0").rename(outside)
    (frames / COMP / "0").symlink_to(outside, target_is_directory=True)  # a clip folder that leads out
    with pytest.raises(AnnotationError, match=f"'{COMP}__0'.*leaves the dataset folder"):
        build_manifest_for("finediving", _dive_files(finediving), frames, num_shards=1)


# ------------------------------------------------------------------------------------------- Diving48 V2

def test_diving48_paths_that_leave_the_dataset_are_refused(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    outside = tmp_path / "secret.mp4"
    outside.write_bytes(b"x")
    (videos / "ok.mp4").write_bytes(b"x")
    (videos / "link.mp4").symlink_to(outside)
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps([["Back", "15som", "NoTwis", "PIKE"]]))
    test = tmp_path / "test.json"
    test.write_text(json.dumps([{"vid_name": "ok", "label": 0, "start_frame": 0, "end_frame": 5}]))
    files = {"test_annotations": test, "vocab": vocab, "train_annotations": tmp_path / "train.json"}
    for name in ("../secret", "link"):
        files["train_annotations"].write_text(json.dumps([{"vid_name": name, "label": 0, "start_frame": 0,
                                                           "end_frame": 5}]))
        with pytest.raises(AnnotationError, match=f"'{name}'.*leaves the dataset folder"):
            build_manifest_for("diving48", files, videos, num_shards=1)


def test_generated_videos_restored_from_the_cache_as_links_are_read(tmp_path):
    """SynthDive's videos are the workflow's own output; Snakemake's between-workflow cache restores them as
    links into the cache folder, which must not be refused (a '..' in an annotation still is)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "abc.mp4").write_bytes(b"x")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "v0.mp4").symlink_to(cache / "abc.mp4")
    (cache / "def.mp4").write_bytes(b"x")
    (videos / "v1.mp4").symlink_to(cache / "def.mp4")
    vocab = tmp_path / "vocab.json"
    vocab.write_text(json.dumps([["Back", "15som", "NoTwis", "PIKE"]]))
    ann = {"vid_name": "v0", "label": 0, "start_frame": 0, "end_frame": 5}
    (tmp_path / "train.json").write_text(json.dumps([ann]))
    (tmp_path / "test.json").write_text(json.dumps([{**ann, "vid_name": "v1"}]))
    files = {"train_annotations": tmp_path / "train.json", "test_annotations": tmp_path / "test.json", "vocab": vocab}
    with pytest.raises(AnnotationError, match="leaves the dataset folder"):
        build_manifest_for("diving48", files, videos, num_shards=1)  # a real dataset: refused
    df, _ = build_manifest_for("diving48", files, videos, num_shards=1, generated=True)
    assert sorted(df["video"]) == ["v0", "v1"]
    (tmp_path / "train.json").write_text(json.dumps([{**ann, "vid_name": "../cache/abc"}]))
    with pytest.raises(AnnotationError, match="leaves the dataset folder"):
        build_manifest_for("diving48", files, videos, num_shards=1, generated=True)
