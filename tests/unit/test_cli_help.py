"""Every command and every argument of `kiosk` says what it is (`--help` for everything)."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from kiosk.cli import build_parser


def walk(parser: argparse.ArgumentParser, name: str = "kiosk"):  # type: ignore[no-untyped-def]
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from walk(sub, f"{name} {sub_name}")


COMMANDS = list(walk(build_parser()))


def test_the_walk_sees_every_command() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"kiosk run", "kiosk simulate", "kiosk fake-server", "kiosk search", "kiosk report",
            "kiosk index add", "kiosk index remove", "kiosk check"} <= names


@pytest.mark.parametrize(("name", "parser"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_a_description_and_every_argument_help(
    name: str, parser: argparse.ArgumentParser
) -> None:
    if name != "kiosk":
        assert parser.description, f"{name}: no description"
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                               argparse._SubParsersAction)):
            continue
        assert action.help, f"{name}: {action.option_strings or action.dest} has no help"


def test_help_runs_for_run_and_fake_server() -> None:
    for command in ("run", "fake-server"):
        out = subprocess.run(
            [sys.executable, "-m", "kiosk.cli", command, "--help"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        assert "Exit codes" in out
