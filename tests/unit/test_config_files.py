"""kiosk.config's files and secrets: systemd credentials, files that are missing, not UTF-8 or
a directory, and the example config/kiosk.toml kept in step with the defaults; secrets never show.

Split from test_config.py (which keeps names, types, ranges and env overrides) to stay small.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tomllib
from pathlib import Path

import pytest

from kiosk.config import SECTIONS, Config, Secret, load_config_file, read_credentials_dir
from kiosk.errors import ConfigError
from tests.unit.config_loading import EXAMPLE, KEY, config_error, load

# --- secrets -------------------------------------------------------------------------------------


def test_secret_never_shows_its_value() -> None:
    secret = Secret(KEY)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        "%s" % secret,  # noqa: UP031 - how logging formats it
        f"{secret!r}",
        str(ValueError(secret)),
    ]
    assert all(KEY not in text for text in shown)
    assert secret.reveal() == KEY
    assert secret and not Secret("")
    assert secret == Secret(KEY) and secret != Secret("other")


def test_loaded_config_repr_and_errors_do_not_contain_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "OPENAI_API_KEY": KEY,
        "AZURE_OPENAI_API_KEY": KEY + "az",
        "AZURE_SEARCH_API_KEY": KEY + "se",
    }
    cfg = load("", env)
    assert KEY not in repr(cfg) and KEY not in str(cfg.credentials)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("config %s %r", cfg, cfg.credentials)
    assert KEY not in caplog.text
    err = config_error("[vad]\naggressiveness = 9\n", env)
    assert KEY not in str(err)


def test_secrets_come_from_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "OPENAI_API_KEY").write_text(KEY + "\n")
    (tmp_path / "azure_openai_api_key").write_text("az-key")  # lower-case names work too
    found = read_credentials_dir({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert found == {"OPENAI_API_KEY": KEY, "AZURE_OPENAI_API_KEY": "az-key"}
    cfg = load_config_file(_empty_file(tmp_path), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cfg.credentials.openai_api_key.reveal() == KEY
    assert cfg.credentials.azure_openai_api_key.reveal() == "az-key"


def test_env_key_wins_over_credentials_file(tmp_path: Path) -> None:
    (tmp_path / "OPENAI_API_KEY").write_text("from-file")
    cfg = load_config_file(
        _empty_file(tmp_path), {"CREDENTIALS_DIRECTORY": str(tmp_path), "OPENAI_API_KEY": KEY}
    )
    assert cfg.api_key.reveal() == KEY


def test_no_credentials_directory_reads_nothing() -> None:
    assert read_credentials_dir({}) == {}


def test_credentials_file_that_is_not_text_is_config_error(tmp_path: Path) -> None:
    (tmp_path / "OPENAI_API_KEY").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError) as info:
        read_credentials_dir({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert info.value.key == "credentials.openai_api_key"


def _empty_file(tmp_path: Path) -> Path:
    path = tmp_path / "kiosk.toml"
    path.write_text("")
    return path


# --- files ---------------------------------------------------------------------------------------


def test_config_file_that_does_not_exist_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path / "missing.toml", {}, require_key=False)
    assert info.value.key == "(file)"


def test_config_file_that_is_not_utf8_is_config_error(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_bytes(b"[vad]\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config_file(path, {}, require_key=False)


def test_config_file_overrides_win_over_env(tmp_path: Path) -> None:
    cfg = load_config_file(
        _empty_file(tmp_path),
        {"KIOSK_REALTIME_VOICE": "alloy"},
        require_key=False,
        overrides={"KIOSK_REALTIME_VOICE": "verse"},
    )
    assert cfg.realtime.voice == "verse"


@pytest.mark.skipif(not EXAMPLE.exists(), reason="config/kiosk.toml not written yet")
def test_example_config_loads_cleanly() -> None:
    # The example's state_dir / index_path are the built-in defaults, which resolve per machine
    # (installed /var/lib/kiosk if writable, else ~/.local/state/kiosk): resolve both alike.
    from kiosk.config import _resolve_paths

    assert load_config_file(EXAMPLE, {}, require_key=False) == _resolve_paths(Config(), {})


@pytest.mark.skipif(not EXAMPLE.exists(), reason="config/kiosk.toml not written yet")
def test_example_config_documents_every_key_with_its_default() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    defaults = Config()
    for name, cls in SECTIONS.items():
        documented = raw.get(name, {})
        for f in dataclasses.fields(cls):
            if f.name == "state_pins":
                continue  # an optional table, shown commented out
            assert f.name in documented, f"config/kiosk.toml lacks {name}.{f.name}"
            assert documented[f.name] == getattr(getattr(defaults, name), f.name), (
                f"{name}.{f.name}"
            )


def test_example_config_comments_every_key() -> None:
    """Each key has a comment on its line or a comment block right above it."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    bare = [
        line
        for i, line in enumerate(lines)
        if re.match(r"^[a-z_]+ *=", line) and "#" not in line and not lines[i - 1].startswith("#")
    ]
    assert bare == []


def test_config_path_that_is_a_directory_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read") as info:
        load_config_file(tmp_path, {}, require_key=False)
    assert info.value.key == "(file)"


def test_equal_secrets_hash_alike_so_configs_compare_and_hash() -> None:
    assert hash(Secret(KEY)) == hash(Secret(KEY))
    assert len({Secret(KEY), Secret(KEY), Secret("")}) == 2
