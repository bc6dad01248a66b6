from pathlib import Path

import pytest
import yaml

from finepseudo.config import ConfigError, load_config, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def test_default_and_test_configs_are_valid():
    for name in ("config/config.yaml", "config/test.yaml"):
        cfg = load_config(ROOT / name, SCHEMA)
        assert cfg["dataset"]["name"] == "synthdive"
        assert cfg["fe"]["clip_frames"] <= cfg["frames"]["num_frames"]


def test_defaults_fill_missing_sections():
    cfg = validate_config({}, SCHEMA)
    assert cfg["frames"]["on_error"] == "fail"
    assert cfg["methods"] == ["supervised", "supervised_full"]


def test_every_default_config_key_is_commented():
    """Each line of config/config.yaml that sets a key carries a comment (on it or the line above)."""
    lines = (ROOT / "config/config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("- "):
            continue
        if ":" in s and "#" not in s:
            above = lines[i - 1].strip() if i else ""
            nested_block = s.endswith(":") or lines[i - 1].rstrip().endswith(":")
            assert above.startswith("#") or nested_block, f"config/config.yaml line {i + 1} has no comment: {s}"


@pytest.mark.parametrize(
    "patch, key, words",
    [
        ({"device": "gpu"}, "device", ["'auto'", "'cuda'"]),
        ({"frames": {"on_error": "ignore"}}, "frames.on_error", ["'fail'", "'skip'"]),
        ({"fe": {"lr": -1}}, "fe.lr", ["-1"]),
        ({"fe": {"learning_rate": 0.1}}, "fe", ["learning_rate", "allowed keys", "lr"]),
        ({"methods": ["supervised", "magic"]}, "methods.1", ["'magic'"]),
        ({"splits": {"label_percents": [0]}}, "splits.label_percents.0", ["0"]),
    ],
)
def test_bad_values_name_the_key_and_allowed_values(patch, key, words):
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for k, v in patch.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) else v
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert f"config key '{key}'" in msg
    for w in words:
        assert w in msg


def test_synthdive_section_lists_every_generator_key():
    from finepseudo.synthdive import DEFAULT_CONFIG

    cfg = load_config(ROOT / "config/config.yaml", SCHEMA)
    assert set(cfg["synthdive"]) - {"seed"} == set(DEFAULT_CONFIG)
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]["synthdive"]["properties"]
    assert set(schema) - {"seed"} == set(DEFAULT_CONFIG)


def test_effective_epochs_gives_small_labeled_sets_enough_steps():
    from finepseudo.steps import effective_epochs

    assert effective_epochs(420, 30, 16, 600) == 30  # 27 steps per epoch: 810 steps already
    assert effective_epochs(42, 30, 16, 600) == 200  # 3 steps per epoch
    assert effective_epochs(42, 30, 16, 0) == 30
