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


def test_own_commands_are_the_ones_defined_without_the_command_modules() -> None:
    from kiosk.cli import OWN_COMMANDS

    own = {n.split()[1] for n, _ in walk(build_parser("run")) if n.count(" ") == 1}
    assert own == OWN_COMMANDS


def test_kiosk_run_leaves_the_other_commands_modules_unimported() -> None:
    """The daemon keeps what it imports for its whole life: `kiosk run` parses its arguments
    without importing `kiosk check`'s, `index`'s or `report`'s modules (~0.5 MB resident),
    nor difflib (only a mistyped setting needs it); any other command still sees every
    command."""
    code = (
        "import sys\n"
        "from kiosk import cli\n"
        "heavy = ('kiosk.service.check', 'kiosk.rag.cli', 'kiosk.report', 'csv', 'difflib')\n"
        "args = cli.build_parser('run').parse_args(['run', '--config', 'x.toml'])\n"
        "print(args.func is cli.cmd_run, [m for m in heavy if m in sys.modules])\n"
        "cli.main(['version'])\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "print(cli.build_parser('report').parse_args(['report', '--json']).json)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    from kiosk import __version__

    assert out == ["True []", f"kiosk {__version__}", "[]", "True"]
