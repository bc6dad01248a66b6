"""Config validation against the workflow's JSON schema, with messages that name the key.

The Snakefile calls :func:`validate_config` before any job runs. Defaults from the schema are
filled in, so rules can index every key. Then the constraints between keys that one key's schema cannot
express are checked (:func:`cross_key_problems`: clip lengths against the stored frames, [min, max]
pairs, SynthDive classes against the open-world split, the label budget against validation), so a bad
combination stops the run before any job instead of failing hours later with a shape error.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

# the generator's specification only (standard library): validating a config while Snakemake plans the DAG
# imports neither numpy nor ffmpeg
from finepseudo.data.synthdive.spec import DEFAULT_CLASSES as SYNTHDIVE_CLASSES
from finepseudo.data.synthdive.spec import DEFAULT_CONFIG as SYNTHDIVE_CONFIG

__all__ = ["ConfigError", "validate_config", "load_config"]


class ConfigError(ValueError):
    """The config is invalid; the message lists every wrong key and what is allowed."""


def _extend_with_defaults(validator_class):
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    from jsonschema import validators

    return validators.extend(validator_class, {"properties": set_defaults})


def _key(error) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    return path or "<top level>"


def _describe(error) -> str:
    v, s = error.validator, error.schema
    if v == "enum":
        return f"{error.instance!r} is not allowed; allowed values: {', '.join(map(repr, s['enum']))}"
    if v == "additionalProperties":
        allowed = sorted(s.get("properties", {}))
        return f"{error.message}; allowed keys here: {', '.join(allowed)}"
    msg = error.message
    if s.get("description"):
        msg += f" ({s['description']})"
    return msg


def _fill_registries(schema: dict[str, Any]) -> None:
    """The allowed method and architecture names come from :mod:`finepseudo.registry`, not the schema file."""
    from finepseudo.registry import METHODS, VIDEO_ARCHS

    props = schema["properties"]
    props["methods"]["items"]["enum"] = list(METHODS)
    props["predict"]["properties"]["method"]["enum"] = list(METHODS) + ["finepseudo_no_filter"]
    props["fe"]["properties"]["arch"]["enum"] = list(VIDEO_ARCHS)


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place (defaults filled) and return it; raise ConfigError naming keys."""
    from jsonschema import Draft202012Validator

    schema = yaml.safe_load(Path(schema_path).read_text())
    _fill_registries(schema)
    validator = _extend_with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"  config key '{_key(e)}': {_describe(e)}" for e in errors]
        raise ConfigError(
            "invalid config (checked against " + str(schema_path) + "):\n" + "\n".join(lines)
        )
    problems = cross_key_problems(config)
    if problems:
        lines = [f"  config keys {', '.join(repr(k) for k in keys)}: {msg}" for keys, msg in problems]
        raise ConfigError("invalid combination of config values:\n" + "\n".join(lines))
    return config


#: methods that pseudo-label, and so choose hyper-parameters on (and calibrate on) the validation split
PSEUDO_METHODS = ("pl", "fa_only", "finepseudo", "finepseudo_uncal", "finepseudo_no_gitdl", "finepseudo_lat_only",
                  "finepseudo_lscore_only")


def cross_key_problems(config: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """Constraints between keys of a schema-valid config (defaults filled): a list of (keys, what is wrong
    and what to do), empty when the combination is fine."""
    out: list[tuple[tuple[str, ...], str]] = []
    fr, fe, al = config["frames"], config["fe"], config["alignability"]
    t = fr["num_frames"]
    for key, value, what in (("fe.clip_frames", fe["clip_frames"], "frames per f_E training / evaluation clip"),
                             ("fe.ssl.clip_frames", fe["ssl"]["clip_frames"], "frames per self-supervised clip"),
                             ("fe.ssl.segments", fe["ssl"]["segments"], "temporal segments per video"),
                             ("alignability.num_frames", al["num_frames"], "frames per video f_A embeds")):
        if value > t:
            out.append(((key, "frames.num_frames"),
                        f"{key} is {value} ({what}) but frames.num_frames stores only {t} frames per video: lower "
                        f"{key} or raise frames.num_frames to at least {value}"))
    px = config["baselines"]["pixel_size"]
    if px > fr["size"]:
        out.append((("baselines.pixel_size", "frames.size"),
                    f"baselines.pixel_size is {px} but frames are stored at frames.size {fr['size']} pixels: the "
                    f"pixel baselines average frames down, never up; lower baselines.pixel_size to at most "
                    f"{fr['size']}"))
    span = fe["augment"].get("span")
    if span is not None and span[0] > span[1]:
        out.append((("fe.augment.span",), f"fe.augment.span is {span}: it is [lo, hi], lo must not exceed hi"))
    if config["dataset"]["name"] == "synthdive":
        out += _synthdive_problems(config)
    return out


def _synthdive_problems(config: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    out: list[tuple[tuple[str, ...], str]] = []
    sd = {**SYNTHDIVE_CONFIG, "classes": SYNTHDIVE_CLASSES,
          **{k: v for k, v in config["synthdive"].items() if v is not None}}
    for key in ("phase_scale", "idle_frames", "distractors"):
        lo, hi = sd[key]
        if lo > hi:
            out.append(((f"synthdive.{key}",), f"synthdive.{key} is {sd[key]}: it is [min, max], min must not "
                                               "exceed max"))
    classes = list(sd["classes"])
    novel = list(sd["novel_classes"] or [])
    both = sorted(set(classes) & set(novel))
    if both:
        out.append((("synthdive.classes", "synthdive.novel_classes"),
                    f"class(es) {both} are in both synthdive.classes and synthdive.novel_classes: a class is "
                    "either labeled (classes) or only in the unlabeled pool (novel_classes); remove them from one"))
    n_classes = len(set(classes) | set(novel))
    k = config["open_world"]["novel_classes"]
    if k >= n_classes:
        out.append((("open_world.novel_classes", "synthdive.classes"),
                    f"open_world.novel_classes is {k} but SynthDive renders {n_classes} classes: at least one must "
                    f"stay known; set open_world.novel_classes to at most {n_classes - 1}"))
    hp = config["hparams"]
    uses_val = any(m in PSEUDO_METHODS for m in config["methods"]) and (hp["select"] or config["pseudo"]["calibrate"])
    if hp["val_per_class"] > 0 and uses_val:
        per_class = sd["train_per_class"]
        for p in config["splits"]["label_percents"]:
            n = min(per_class, max(1, int(round(p / 100.0 * per_class))))  # as finepseudo.data.splits draws them
            if n < 2:
                out.append((("splits.label_percents", "hparams.val_per_class", "synthdive.train_per_class"),
                            f"at {p:g} % labels each class gets {n} labeled video (synthdive.train_per_class "
                            f"{per_class}), which it keeps for training, so hparams.val_per_class "
                            f"{hp['val_per_class']} leaves no validation video and hparams.select / pseudo.calibrate "
                            "would silently fall back to the config values: raise the percent or "
                            "synthdive.train_per_class, or set hparams.val_per_class: 0 to use the config values"))
    return out


def load_config(config_path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    cfg = yaml.safe_load(Path(config_path).read_text()) or {}
    return validate_config(cfg, schema_path)
