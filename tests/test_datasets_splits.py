import json

import pandas as pd
import pytest

from finepseudo.data.datasets import AnnotationError, build_manifest
from finepseudo.data.splits import make_splits

VOCAB = [["Back", "15som", "NoTwis", "PIKE"], ["Back", "25som", "NoTwis", "PIKE"], ["Inward", "Dive", "NoTwis", "TUCK"]]


def _write(tmp_path, train, test, vocab=VOCAB, make_files=True):
    (tmp_path / "videos").mkdir(exist_ok=True)
    for name, data in (("train.json", train), ("test.json", test), ("vocab.json", vocab)):
        (tmp_path / name).write_text(json.dumps(data))
    if make_files:
        for e in train + test:
            if isinstance(e, dict) and "vid_name" in e:
                (tmp_path / "videos" / f"{e['vid_name']}.mp4").write_bytes(b"x")
    return [tmp_path / "train.json", tmp_path / "test.json", tmp_path / "vocab.json", tmp_path / "videos"]


def _entries(prefix, per_class, classes=3):
    return [{"vid_name": f"{prefix}{c}_{i:02d}", "label": c, "start_frame": 0, "end_frame": 20}
            for c in range(classes) for i in range(per_class)]


def test_manifest_reads_diving48_format(tmp_path):
    paths = _write(tmp_path, _entries("tr", 10), _entries("te", 2))
    m = build_manifest(*paths, num_shards=4)
    assert list(m.columns) == ["video", "path", "split", "label", "label_name", "start_frame", "end_frame", "start_sec",
                                "end_sec", "shard"]
    assert len(m) == 36 and set(m["split"]) == {"train", "test"}
    assert m.loc[m["video"] == "tr1_00", "label_name"].item() == "Back_25som_NoTwis_PIKE"
    assert sorted(m["shard"].value_counts().tolist()) == [9, 9, 9, 9]


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"vid_name": "tr9", "label": 7, "start_frame": 0, "end_frame": 5}, ["tr9", "unknown label 7", "train.json"]),
        ({"vid_name": "tr9", "label": 0, "start_frame": 0}, ["tr9", "missing key 'end_frame'"]),
        ({"vid_name": "tr9", "label": "1", "start_frame": 0, "end_frame": 5}, ["tr9", "'label' must be an integer"]),
        ({"vid_name": "tr9", "label": 0, "start_frame": 9, "end_frame": 5}, ["tr9", "bad frame range"]),
        ({"vid_name": "tr9", "label": -1, "start_frame": 0, "end_frame": 5}, ["tr9", "unknown label -1", "(0..2)"]),
        ({"vid_name": "tr9", "label": True, "start_frame": 0, "end_frame": 5}, ["tr9", "'label' must be an integer"]),
        ({"vid_name": "tr9", "label": 0, "start_frame": -3, "end_frame": 5}, ["tr9", "start_frame=-3",
                                                                              "need 0 <= start_frame <= end_frame"]),
        ({"vid_name": "tr9", "label": 0, "start_frame": 0.5, "end_frame": 5}, ["tr9", "'start_frame' must be an integer"]),
        ({"vid_name": "", "label": 0, "start_frame": 0, "end_frame": 5}, ["'vid_name' must be a non-empty string"]),
        ({"vid_name": 17, "label": 0, "start_frame": 0, "end_frame": 5}, ["'vid_name' must be a non-empty string"]),
        (["tr9", 0, 0, 5], ["expected an object, got list"]),
        ({"vid_name": "tr0_00", "label": 0, "start_frame": 0, "end_frame": 20}, ["duplicate vid_name 'tr0_00'",
                                                                                 "listed twice in this file"]),
    ],
)
def test_bad_annotation_names_the_entry(tmp_path, bad, words):
    paths = _write(tmp_path, _entries("tr", 2) + [bad], _entries("te", 1))
    with pytest.raises(AnnotationError) as err:
        build_manifest(*paths, num_shards=2)
    for w in words + [f"{paths[0]}, entry 6"]:  # the file and the entry: 2 videos x 3 classes come first
        assert w in str(err.value)


@pytest.mark.parametrize("which, data, words", [
    (0, [], ["train.json", "the annotation list is empty"]),
    (0, {"tr0": 0}, ["train.json", "expected a JSON list"]),
    (1, _entries("tr", 1)[:1], ["video 'tr0_00' appears in both", "train.json", "test.json"]),
    (2, [["Back", "15som"], ["Back", "15som"]], ["vocab.json", "entries 0 and 1 are both 'Back_15som'"]),
    (2, [["Back", "15som"], []], ["vocab.json", "vocabulary entry 1 is []"]),
    (2, [], ["vocab.json", "non-empty JSON list"]),
])
def test_bad_annotation_files_name_the_file_and_fault(tmp_path, which, data, words):
    paths = _write(tmp_path, _entries("tr", 2), _entries("te", 1))
    paths[which].write_text(json.dumps(data))
    with pytest.raises(AnnotationError) as err:
        build_manifest(*paths, num_shards=2)
    for w in words:
        assert w in str(err.value)


def test_missing_video_file_is_named(tmp_path):
    paths = _write(tmp_path, _entries("tr", 2), _entries("te", 1))
    (tmp_path / "videos" / "tr1_01.mp4").unlink()
    with pytest.raises(AnnotationError, match="tr1_01"):
        build_manifest(*paths, num_shards=2)


def test_malformed_json_names_the_file(tmp_path):
    paths = _write(tmp_path, _entries("tr", 2), _entries("te", 1))
    paths[1].write_text("[{not json")
    with pytest.raises(AnnotationError, match="test.json"):
        build_manifest(*paths, num_shards=2)


def test_splits_stratified_label_free_and_deterministic(tmp_path):
    paths = _write(tmp_path, _entries("tr", 10) + _entries("rare", 1, classes=1), _entries("te", 2))
    m = build_manifest(*paths, num_shards=2)
    a = make_splits(m, 10, seed=3)
    b = make_splits(m, 10, seed=3)
    c = make_splits(m, 10, seed=4)
    for k in a:
        pd.testing.assert_frame_equal(a[k], b[k])
    assert not a["labeled"]["video"].equals(c["labeled"]["video"])
    assert "label" not in a["unlabeled"].columns
    per_class = a["labeled"]["label"].value_counts()
    assert set(per_class.index) == {0, 1, 2} and per_class.min() >= 1
    train = set(m.loc[m["split"] == "train", "video"])
    assert set(a["labeled"]["video"]) | set(a["unlabeled"]["video"]) == train
    assert not set(a["labeled"]["video"]) & set(a["unlabeled"]["video"])
    assert list(a["unlabeled_truth"]["video"]) == list(a["unlabeled"]["video"])
    assert set(a["test"]["video"]) == set(m.loc[m["split"] == "test", "video"])
    full = make_splits(m, 100, seed=0)
    assert len(full["labeled"]) == len(train) and full["unlabeled"].empty


def test_validation_is_carved_from_the_labeled_budget(tmp_path):
    paths = _write(tmp_path, _entries("tr", 10) + _entries("rare", 1, classes=1), _entries("te", 2))
    m = build_manifest(*paths, num_shards=2)
    plain = make_splits(m, 30, seed=3)
    s = make_splits(m, 30, seed=3, val_per_class=1)
    assert plain["val"].empty
    budget = set(plain["labeled"]["video"])
    # the same labeled budget, split into training and validation videos; the pool does not change
    assert set(s["labeled"]["video"]) | set(s["val"]["video"]) == budget
    assert not set(s["labeled"]["video"]) & set(s["val"]["video"])
    assert s["unlabeled"].equals(plain["unlabeled"])
    # one validation video per class that keeps a labeled one to train on
    lab_n = plain["labeled"]["label"].value_counts()
    assert sorted(s["val"]["label"]) == sorted(c for c, n in lab_n.items() if n >= 2)
    assert set(s["labeled"]["label"]) == set(plain["labeled"]["label"])
    assert list(s["val"].columns) == ["video", "label", "shard"]
    # at 10 % every class has a single labeled video: none can be spared for validation
    assert make_splits(m, 10, seed=3, val_per_class=1)["val"].empty
    with pytest.raises(ValueError, match="val_per_class"):
        make_splits(m, 30, seed=3, val_per_class=-1)
