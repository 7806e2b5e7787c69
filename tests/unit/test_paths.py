"""One resolution order for config, state and index (flag -> env -> installed -> XDG)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiosk import paths
from kiosk.config import load_config_file


@pytest.fixture
def no_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A machine where the kiosk is not installed, and a user whose home is tmp_path/home."""
    monkeypatch.setattr(paths, "INSTALLED_CONFIG", tmp_path / "etc" / "kiosk.toml")
    monkeypatch.setattr(paths, "INSTALLED_STATE", tmp_path / "var-lib-kiosk")
    return {"HOME": str(tmp_path / "home")}


def test_a_user_without_an_install_gets_xdg_state_and_index(
    no_install: dict[str, str], tmp_path: Path
) -> None:
    cfg = load_config_file(None, no_install, require_key=False)
    state = tmp_path / "home" / ".local" / "state" / "kiosk"
    assert cfg.service.state_dir == str(state)
    assert cfg.rag.index_path == str(state / "index.sqlite")


def test_xdg_variables_win_over_home(no_install: dict[str, str], tmp_path: Path) -> None:
    env = {**no_install, "XDG_STATE_HOME": str(tmp_path / "st"),
           "XDG_CONFIG_HOME": str(tmp_path / "cf")}
    (tmp_path / "cf" / "kiosk").mkdir(parents=True)
    (tmp_path / "cf" / "kiosk" / "kiosk.toml").write_text("[vad]\nhangover_ms = 650\n")
    cfg = load_config_file(None, env, require_key=False)
    assert cfg.vad.hangover_ms == 650  # the user's own config file was found
    assert cfg.service.state_dir == str(tmp_path / "st" / "kiosk")


def test_installed_config_and_writable_state_are_used(
    no_install: dict[str, str], tmp_path: Path
) -> None:
    paths.INSTALLED_CONFIG.parent.mkdir()
    paths.INSTALLED_CONFIG.write_text("[vad]\nhangover_ms = 800\n")
    paths.INSTALLED_STATE.mkdir()
    cfg = load_config_file(None, no_install, require_key=False)
    assert cfg.vad.hangover_ms == 800
    assert cfg.rag.index_path == str(paths.INSTALLED_STATE / "index.sqlite")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_installed_state_that_this_user_may_not_write_falls_back_to_xdg(
    no_install: dict[str, str], tmp_path: Path
) -> None:
    paths.INSTALLED_STATE.mkdir(mode=0o555)
    cfg = load_config_file(None, no_install, require_key=False)
    assert cfg.service.state_dir.endswith(".local/state/kiosk")


def test_flag_then_env_then_set_values_win(no_install: dict[str, str], tmp_path: Path) -> None:
    flag = tmp_path / "flag.toml"
    flag.write_text(f'[service]\nstate_dir = "{tmp_path / "mine"}"\n')
    envfile = tmp_path / "env.toml"
    envfile.write_text("[vad]\nhangover_ms = 900\n")
    env = {**no_install, "KIOSK_CONFIG": str(envfile)}
    assert load_config_file(None, env, require_key=False).vad.hangover_ms == 900
    cfg = load_config_file(flag, env, require_key=False)
    assert cfg.service.state_dir == str(tmp_path / "mine")
    assert cfg.rag.index_path == str(tmp_path / "mine" / "index.sqlite")
    env["KIOSK_RAG_INDEX_PATH"] = str(tmp_path / "x.sqlite")
    assert load_config_file(flag, env, require_key=False).rag.index_path == str(
        tmp_path / "x.sqlite"
    )


def test_systemd_state_directory_is_honoured(no_install: dict[str, str], tmp_path: Path) -> None:
    env = {**no_install, "STATE_DIRECTORY": str(tmp_path / "sd")}
    assert load_config_file(None, env, require_key=False).service.state_dir == str(tmp_path / "sd")
