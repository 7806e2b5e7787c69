"""README's first command, as a user runs it: a fresh venv with `pip install .` (no test
extra: no openai SDK), then the README's `kiosk simulate` line, with no API key.

The answer must be a real one: what the bundled question WAVs ask, answered from the bundled
demo knowledge base, in English and in Japanese. Installs from the package registry (a few
minutes), so it runs where ``KIOSK_RUN_INSTALL_TEST=1`` (CI sets it) or
``KIOSK_RUN_USER_INSTALL_TEST=1``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("KIOSK_RUN_INSTALL_TEST") != "1"
    and os.environ.get("KIOSK_RUN_USER_INSTALL_TEST") != "1",
    reason="installs a venv from the registry: set KIOSK_RUN_USER_INSTALL_TEST=1 (CI runs it)",
)


def readme_first_command() -> list[str]:
    """The `kiosk simulate ...` part of the README's first command, as argv."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    line = next(l for l in block.splitlines() if l and not l.startswith("#"))
    install, run = line.split(" && ", 1)
    assert install.startswith("./install.sh"), line
    return shlex.split(run)


def test_readme_first_command_answers_from_the_demo_knowledge_base_in_a_user_install(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "kiosk", src / "kiosk", ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", str(src)],
        capture_output=True, text=True, timeout=1500,
    )
    assert pip.returncode == 0, pip.stderr[-3000:]
    python = str(venv / "bin" / "python")
    no_sdk = subprocess.run([python, "-c", "import openai"], capture_output=True, timeout=60)
    assert no_sdk.returncode != 0, "a user install must not have the test extra's openai SDK"

    argv = readme_first_command()
    assert argv[0] == ".venv/bin/kiosk", argv
    argv = [str(venv / "bin" / "kiosk"), *argv[1:]]
    argv[argv.index("--output") + 1] = str(tmp_path / "answer.wav")
    env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and not k.startswith("KIOSK_")}
    env["HOME"] = str(tmp_path)  # nothing from the developer's home
    run = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert out.count("no API key configured: answering on this device") == 1, out  # once, plainly
    heard = re.findall(r"^  heard: +(.*)$", out, re.MULTILINE)
    answered = re.findall(r"^  answered: +(.*)$", out, re.MULTILINE)
    assert len(heard) == len(answered) == 2, out
    assert "parking" in heard[0].lower() and "40 spaces" in answered[0], out
    assert "土曜日" in heard[1] and "13時" in answered[1], out
    assert "0 tokens" in out
    assert (tmp_path / "answer.wav").stat().st_size > 24000 * 2 * 5  # seconds of speech
