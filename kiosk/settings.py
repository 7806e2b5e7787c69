"""The settings a command runs with: the config file plus the command-line overrides.

Shared by ``kiosk.cli`` (every subcommand) and ``kiosk.daemon`` (start-up and SIGHUP
reload), which must not import each other: the CLI starts the daemon, and a reload must
read ``--provider`` / ``--endpoint`` exactly as the first load did.
"""

from __future__ import annotations

import argparse

from kiosk.config import Config, load_config_file
from kiosk.errors import ConfigError

# Command-line flags that override a setting, as the environment variable each stands for.
FLAG_VARIABLES = {
    "provider": "KIOSK_REALTIME_PROVIDER",
    "endpoint": "KIOSK_REALTIME_ENDPOINT",
    "index": "KIOSK_RAG_INDEX_PATH",
}


def command_line_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--provider`` / ``--endpoint`` / ``--index`` as the environment keys they override."""
    return {
        var: getattr(args, flag)
        for flag, var in FLAG_VARIABLES.items()
        if getattr(args, flag, None)
    }


def load_settings(args: argparse.Namespace, *, require_key: bool) -> Config:
    """Load ``args.config`` with the command-line overrides; raises ``ConfigError`` naming the
    flag when a flag's value is what is wrong."""
    overrides = command_line_overrides(args)
    try:
        return load_config_file(args.config, require_key=require_key, overrides=overrides)
    except ConfigError as exc:
        var = exc.key.partition("[")[0]
        flag = next((f for f, v in FLAG_VARIABLES.items() if v == var and v in overrides), None)
        if flag is None:
            raise
        raise ConfigError(f"--{flag}", exc.problem) from None


def load_run_settings(args: argparse.Namespace) -> Config:
    """Settings for the daemon: no key and no endpoint means the on-device local engine
    answers; a cloud endpoint without its key is still the one-line missing-key error."""
    cfg = load_settings(args, require_key=False)
    if not cfg.uses_local_engine:
        cfg = load_settings(args, require_key=True)
    return cfg
