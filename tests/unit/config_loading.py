"""Shared by the config tests: load TOML text with an env dict; the one-line ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.config import Config, load_config
from kiosk.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "kiosk.toml"
KEY = "sk-test-0123456789abcdef"
AZURE = (
    '[realtime]\nprovider = "azure"\nendpoint = "https://res.openai.azure.com"\ndeployment = "rt"\n'
)


def load(toml: str = "", env: dict[str, str] | None = None, **kwargs: Any) -> Config:
    return load_config(toml, env or {}, **({"require_key": False} | kwargs))


def config_error(toml: str = "", env: dict[str, str] | None = None, **kwargs: Any) -> ConfigError:
    """The ConfigError loading this raises, checked to be one line naming its key."""
    with pytest.raises(ConfigError) as info:
        load(toml, env, **kwargs)
    err = info.value
    assert "\n" not in str(err)
    assert str(err).startswith(f"config: {err.key}: ")
    return err
