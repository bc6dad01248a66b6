"""SynthDive, the procedurally rendered diving benchmark: see :mod:`finepseudo.data.synthdive.drawing`."""

from finepseudo.data.synthdive.drawing import (
    CONFIG_DOCS,
    DEFAULT_CLASSES,
    DEFAULT_CONFIG,
    PHASES,
    STATIC_SCENE,
    TINY_CONFIG,
    class_table,
    generate,
    load_diving48_vocab,
    parse_class,
    plan_videos,
    render_video,
    resolve_config,
)

__all__ = [
    "CONFIG_DOCS",
    "DEFAULT_CLASSES",
    "DEFAULT_CONFIG",
    "PHASES",
    "STATIC_SCENE",
    "TINY_CONFIG",
    "class_table",
    "generate",
    "load_diving48_vocab",
    "parse_class",
    "plan_videos",
    "render_video",
    "resolve_config",
]
