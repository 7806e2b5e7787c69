"""systemd/kiosk.service: systemd itself accepts it, and its exposure stays <= 3.0."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kiosk.config import SECRET_NAMES
from kiosk.service.check import CREDENTIALS_DIR

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "kiosk.service"
EXPOSURE_THRESHOLD = 30  # systemd-analyze's scale is x10: 30 means exposure 3.0
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def unit_copy(tmp_path: Path) -> Path:
    """verify fails when ExecStart's binary is missing: point it at one that exists."""
    text = UNIT.read_text()
    assert "ExecStart=/opt/kiosk/venv/bin/kiosk run" in text
    copy = tmp_path / "kiosk.service"
    copy.write_text(text.replace("/opt/kiosk/venv/bin/kiosk", shutil.which("true") or "/bin/true"))
    return copy


def service_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in UNIT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("["):
            section = line.strip("[]")
        elif line and not line.startswith("#") and section == "Service":
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


@pytest.mark.systemd
@needs_analyze
def test_systemd_analyze_verify_accepts_unit(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(ANALYZE), "verify", str(unit_copy(tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # verify also warns (without failing) about settings it ignores: none allowed here.
    problems = [ln for ln in result.stderr.splitlines() if "kiosk.service" in ln]
    assert problems == []


@pytest.mark.systemd
@needs_analyze
def test_security_exposure_at_most_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(ANALYZE),
            "security",
            "--offline=true",
            f"--threshold={EXPOSURE_THRESHOLD}",
            "--no-pager",
            str(unit_copy(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "Unknown option" in result.stderr or "unrecognized option" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline/--threshold")
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= EXPOSURE_THRESHOLD / 10
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Invalid syntax" not in result.stderr


def test_unit_loads_a_credential_for_every_secret_kiosk_reads() -> None:
    settings = service_settings()
    loaded = {v.split(":", 1)[0]: v.split(":", 1)[1] for v in settings["LoadCredential"]}
    assert set(loaded) == set(SECRET_NAMES)
    for name, path in loaded.items():
        assert Path(path) == CREDENTIALS_DIR / name
    # Without a fallback a provider's missing file would fail the whole start.
    assert {v.split(":", 1)[0] for v in settings["SetCredential"]} == set(SECRET_NAMES)


def test_unit_is_a_notify_service_with_watchdog_reload_and_kiosk_user() -> None:
    settings = service_settings()
    assert settings["Type"] == ["notify"]
    assert settings["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert settings["User"] == ["kiosk"]
    assert set(settings["SupplementaryGroups"][0].split()) == {"audio", "gpio"}
    assert int(settings["WatchdogSec"][0]) > 0
    assert settings["Restart"] == ["on-failure"]


def test_unit_parses_as_ini_without_duplicate_sections() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    assert parser.sections() == ["Unit", "Service", "Install"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"
