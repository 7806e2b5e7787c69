"""The settings a command runs with: the config file plus the command-line overrides.

Shared by ``kiosk.cli`` (every subcommand) and ``kiosk.daemon`` (start-up and SIGHUP
reload), which must not import each other: the CLI starts the daemon, and a reload must
read ``--provider`` / ``--endpoint`` exactly as the first load did.
"""

from __future__ import annotations

import argparse

from kiosk.config import Config, load_config_file


def command_line_overrides(args: argparse.Namespace) -> dict[str, str]:
    """``--provider`` / ``--endpoint`` as the environment keys they override."""
    out: dict[str, str] = {}
    if getattr(args, "provider", None):
        out["KIOSK_REALTIME_PROVIDER"] = args.provider
    if getattr(args, "endpoint", None):
        out["KIOSK_REALTIME_ENDPOINT"] = args.endpoint
    return out


def load_settings(args: argparse.Namespace, *, require_key: bool) -> Config:
    """Load ``args.config`` with the command-line overrides; raises ``ConfigError``."""
    return load_config_file(
        args.config, require_key=require_key, overrides=command_line_overrides(args)
    )
