"""Where the settings file, the state directory and the index live: one order for every command.

    config file:  --config  ->  $KIOSK_CONFIG  ->  /etc/kiosk/kiosk.toml (installed)
                  ->  $XDG_CONFIG_HOME/kiosk/kiosk.toml (~/.config)  ->  none: built-in defaults
    state dir:    service.state_dir (file or KIOSK_SERVICE_STATE_DIR)  ->  $STATE_DIRECTORY
                  (systemd StateDirectory=)  ->  /var/lib/kiosk when it exists and this user may
                  write it (installed)  ->  $XDG_STATE_HOME/kiosk (~/.local/state/kiosk)
    index:        --index  ->  rag.index_path (file or KIOSK_RAG_INDEX_PATH)
                  ->  <state dir>/index.sqlite

So a normal user on a dev machine or on an installed kiosk gets a config, a cost ledger and an
index of their own under their home without a permission error, and the service (user kiosk,
writing /var/lib/kiosk) gets the installed ones. ``kiosk check`` prints which it used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

INSTALLED_CONFIG = Path("/etc/kiosk/kiosk.toml")
INSTALLED_STATE = Path("/var/lib/kiosk")
INDEX_FILE = "index.sqlite"


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "")
    if value and os.path.isabs(value):
        return Path(value)
    return Path(env.get("HOME") or os.path.expanduser("~")) / fallback


def config_path(flag: str | None, env: Mapping[str, str]) -> tuple[Path | None, bool]:
    """The settings file to read and whether it was asked for (a missing asked-for file is an
    error; a missing default just means built-in defaults)."""
    if flag:
        return Path(flag), True
    if env.get("KIOSK_CONFIG"):
        return Path(env["KIOSK_CONFIG"]), True
    if INSTALLED_CONFIG.exists():
        return INSTALLED_CONFIG, False
    user = _xdg(env, "XDG_CONFIG_HOME", ".config") / "kiosk" / "kiosk.toml"
    if user.exists():
        return user, False
    return None, False


def state_dir(configured: str, env: Mapping[str, str]) -> Path:
    """The directory for the cost ledger, the turn log and the default index."""
    if configured:
        return Path(configured)
    if env.get("STATE_DIRECTORY"):  # systemd StateDirectory= (may list several: the first)
        return Path(env["STATE_DIRECTORY"].split(":")[0])
    if INSTALLED_STATE.is_dir() and os.access(INSTALLED_STATE, os.W_OK | os.X_OK):
        return INSTALLED_STATE
    return _xdg(env, "XDG_STATE_HOME", ".local/state") / "kiosk"


def index_path(configured: str, state: Path) -> Path:
    return Path(configured) if configured else state / INDEX_FILE
