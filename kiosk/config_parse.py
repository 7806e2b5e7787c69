"""Settings parsing for :mod:`kiosk.config`: TOML / env values checked against the
settings dataclasses' annotations, ``KIOSK_<SECTION>_<KEY>`` env overrides, and the
"did you mean" hint for an unknown name. Each problem is one :class:`ConfigError` naming
the key (or the environment variable the value came from).
"""

from __future__ import annotations

import contextlib
import sys
import types
import typing
from typing import Any, Literal, get_args, get_origin

from kiosk.errors import ConfigError


def _type_name(tp: Any) -> str:
    if get_origin(tp) is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if get_origin(tp) in (list, dict):
        return str(tp).replace("typing.", "")
    return getattr(tp, "__name__", str(tp))


def _coerce(key: str, tp: Any, value: Any, from_env: bool) -> Any:
    """Check ``value`` against the annotation ``tp``; env strings are parsed first."""
    origin = get_origin(tp)
    if origin is Literal:
        allowed = get_args(tp)
        if from_env and isinstance(value, str) and all(isinstance(a, int) for a in allowed):
            with contextlib.suppress(ValueError):
                value = int(value)
        # Compare types too: 20.0 == 20 and True == 1, but a float frame_ms breaks callers.
        if not any(type(value) is type(a) and value == a for a in allowed):
            raise ConfigError(key, f"must be one of {_type_name(tp)}, got {value!r}")
        return value
    if tp is bool:
        if from_env and isinstance(value, str):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if from_env and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise ConfigError(key, f"must be an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if from_env and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(key, f"must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(key, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, int) and not isinstance(value, bool) and key.endswith("_device"):
            return str(value)  # device index written as a number
        if not isinstance(value, str):
            raise ConfigError(key, f"must be a string, got {value!r}")
        return value
    if origin is list:
        (item_tp,) = get_args(tp)
        if from_env and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(key, f"must be a list, got {value!r}")
        return [_coerce(f"{key}[{i}]", item_tp, v, from_env) for i, v in enumerate(value)]
    if origin is dict:
        _, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(key, f"must be a table, got {value!r}")
        return {
            str(k): _coerce(f"{key}.{_printable(str(k))}", val_tp, v, from_env)
            for k, v in value.items()
        }
    raise ConfigError(key, f"unsupported type {tp!r}")  # pragma: no cover - a bug in this module


def _printable(name: str) -> str:
    """A TOML name as it may appear in a one-line error (quoted keys can hold newlines)."""
    return name if name.isprintable() else repr(name)


def _section_hints(cls: type[Any]) -> dict[str, Any]:
    # The annotations are strings (PEP 563) naming things in the settings class's own module.
    globalns = vars(sys.modules[cls.__module__])
    return typing.get_type_hints(cls, globalns=globalns, localns=vars(types))


def _build_section(name: str, cls: type[Any], raw: dict[str, Any], env_raw: dict[str, str]) -> Any:
    hints = _section_hints(cls)
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in hints:
            raise ConfigError(f"{name}.{_printable(key)}", _unknown(key, hints, "key"))
        values[key] = _coerce(f"{name}.{key}", hints[key], value, from_env=False)
    for key, value in env_raw.items():
        var = env_var(name, key)
        if key not in hints:
            raise ConfigError(var, _unknown(key, hints, "setting", env_prefix=f"KIOSK_{name}_"))
        # A bad value from the environment names the variable, not the file's key.
        values[key] = _coerce(var, hints[key], value, from_env=True)
    return cls(**values)


def env_var(section: str, key: str) -> str:
    """The environment variable that overrides ``section.key``."""
    return f"KIOSK_{section.upper()}_{key.upper()}"


def _unknown(name: str, known: typing.Iterable[str], what: str, env_prefix: str = "") -> str:
    """'unknown <what>' with a "did you mean" when one known name is close, else the list."""
    return f"unknown {what}; {_suggest(name, known, env_prefix)}"


def _suggest(name: str, known: typing.Iterable[str], env_prefix: str = "") -> str:
    names = sorted(known)
    shown = [(env_prefix + k).upper() if env_prefix else k for k in names]
    import difflib  # here: only a mistyped name needs it, and a daemon lives long

    close = difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {shown[names.index(close[0])]}?"
    return f"known: {', '.join(shown)}"


def _env_overrides(
    env: dict[str, str], sections: typing.Iterable[str]
) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for var, value in env.items():
        if not var.startswith("KIOSK_"):
            continue
        rest = var[len("KIOSK_") :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                out.setdefault(section, {})[rest[len(section) + 1 :]] = value
                break
    return out
