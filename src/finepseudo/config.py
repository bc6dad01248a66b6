"""Config validation against the workflow's JSON schema, with messages that name the key.

The Snakefile calls :func:`validate_config` before any job runs. Defaults from the schema are
filled in, so rules can index every key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

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
    return config


def load_config(config_path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """Read a YAML config file and validate it."""
    cfg = yaml.safe_load(Path(config_path).read_text()) or {}
    return validate_config(cfg, schema_path)
