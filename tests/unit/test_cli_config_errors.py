"""The CLI's config error path: a bad setting is ONE stderr line naming the key, exit 2.

Runs the real command (``python -m kiosk.cli``) in a subprocess with a clean
environment, so no API key, device or network is involved: the config is refused first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXIT_USAGE = 2


def run_kiosk(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "kiosk.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env | (env or {}),
    )


def simulate(
    tmp_path: Path, config_text: str | None, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "kiosk.toml"
    if config_text is not None:
        config.write_text(config_text, encoding="utf-8")
    question = tmp_path / "question.wav"  # never opened: the config is refused first
    answer = tmp_path / "answer.wav"
    return run_kiosk(
        tmp_path,
        "simulate",
        "--config",
        str(config),
        "--input",
        str(question),
        "--output",
        str(answer),
        *extra,
        env=env,
    )


def assert_one_line_naming(result: subprocess.CompletedProcess[str], key: str) -> str:
    assert result.returncode == EXIT_USAGE, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert f"{key}:" in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    return lines[0]


@pytest.mark.parametrize(
    ("config_text", "key"),
    [
        ("[vad]\nhangover = 500\n", "vad.hangover"),
        ("[vad]\nhangover_ms = '500'\n", "vad.hangover_ms"),
        ("[vad]\naggressiveness = 9\n", "vad.aggressiveness"),
        ("[realtime\n", "(file)"),
        (
            '[realtime]\nprovider = "voicerag"\nendpoint = "ws://kiosk-rag.example.com/realtime"\n',
            "realtime.endpoint",
        ),
    ],
    ids=["unknown_key", "wrong_type", "out_of_range", "bad_toml", "ws_to_remote_host"],
)
def test_simulate_with_bad_config_prints_one_line_naming_key_and_exits_2(
    tmp_path: Path, config_text: str, key: str
) -> None:
    line = assert_one_line_naming(simulate(tmp_path, config_text), key)
    assert line.startswith("kiosk: ")
    assert not (tmp_path / "answer.wav").exists()


def test_simulate_with_missing_config_file_names_the_file(tmp_path: Path) -> None:
    line = assert_one_line_naming(simulate(tmp_path, None), "(file)")
    assert "kiosk.toml" in line


def test_simulate_with_malformed_endpoint_flag_is_config_error_not_traceback(
    tmp_path: Path,
) -> None:
    result = simulate(tmp_path, "", "--provider", "voicerag", "--endpoint", "ws://[::1/realtime")
    assert_one_line_naming(result, "--endpoint")


def test_simulate_with_bad_env_override_names_the_variable(tmp_path: Path) -> None:
    result = simulate(tmp_path, "", env={"KIOSK_VAD_HANGOVER_MS": "long"})
    assert_one_line_naming(result, "KIOSK_VAD_HANGOVER_MS")


def test_simulate_with_unreadable_credential_names_it_without_its_content(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "OPENAI_API_KEY").write_bytes(b"\xff\xfesk-secret-bytes")
    result = simulate(tmp_path, "", env={"CREDENTIALS_DIRECTORY": str(creds)})
    line = assert_one_line_naming(result, "credentials.openai_api_key")
    assert "sk-secret" not in line


def test_run_with_bad_config_refuses_before_touching_devices(tmp_path: Path) -> None:
    config = tmp_path / "kiosk.toml"
    config.write_text("[audio]\nframe_ms = 25\n", encoding="utf-8")
    result = run_kiosk(tmp_path, "run", "--config", str(config))
    assert_one_line_naming(result, "audio.frame_ms")
