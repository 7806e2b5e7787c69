#!/usr/bin/env bash
# Install what the tests need and run them: the README's test command, and what CI runs.
#
# On Debian 12 as root it installs the system packages first (PortAudio headers for pyaudio,
# PulseAudio with a null sink so the real pyaudio tests have a sound server without a sound
# card, systemd's tools for `systemd-analyze verify`). Then a dev venv in ./.venv
# (install.sh --dev), then pytest. Extra arguments go to pytest.
# Under CI (CI=true) audio and installer tests are required rather than skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3 python3-venv python3-dev gcc libc6-dev pkg-config portaudio19-dev
              pulseaudio pulseaudio-utils libpulse0 libasound2-plugins systemd
              espeak-ng open-jtalk open-jtalk-mecab-naist-jdic libspeexdsp1)
# The Japanese voice of the local engine is in Debian contrib: wanted, not required.
OPTIONAL_APT_PACKAGES=(hts-voice-nitech-jp-atr503-m001)

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "test.sh: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    for pkg in "${OPTIONAL_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null 2>&1 \
            || echo "test.sh: could not install $pkg (Debian contrib?): Japanese speech uses eSpeak NG" >&2
    done
else
    echo "test.sh: not root: skipping apt packages (${APT_PACKAGES[*]}); tests needing them skip" >&2
fi

./install.sh --dev

if bash .ci/pulseaudio.sh; then
    export KIOSK_PULSEAUDIO=1
else
    echo "test.sh: no PulseAudio sound server: the real pyaudio tests will be skipped" >&2
fi

if [ "${CI:-}" = "true" ]; then
    export KIOSK_REQUIRE_PULSEAUDIO=1 KIOSK_RUN_INSTALL_TEST=1
    # CI's machine is unknown and may be shared: real-time waits get twice the slack
    # (upper bounds only; a test waiting for "nothing happens" waits longer).
    export KIOSK_TEST_TIMEOUT_FACTOR="${KIOSK_TEST_TIMEOUT_FACTOR:-2}"
fi

exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
