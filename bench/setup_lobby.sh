#!/usr/bin/env bash
# Set-up for bench/bench_lobby.py: the TTS that makes its corpus (Debian 12, as root).
#   espeak-ng                      English voices (main)
#   open-jtalk, open-jtalk-mecab-naist-jdic   Japanese TTS and its dictionary (main)
#   hts-voice-nitech-jp-atr503-m001           the Japanese voice (contrib, CC-BY 3.0):
#                                             contrib is added to apt's sources if missing
# Then it builds the TTS cache (bench/.cache/lobby/tts) and prints both splits.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(espeak-ng open-jtalk open-jtalk-mecab-naist-jdic hts-voice-nitech-jp-atr503-m001)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || { echo "setup_lobby.sh: run as root to install ${missing[*]}" >&2; exit 1; }
    if ! apt-cache policy hts-voice-nitech-jp-atr503-m001 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        echo "setup_lobby.sh: adding Debian contrib (for the Japanese voice)"
        cat > /etc/apt/sources.list.d/debian-contrib.sources <<'SRC'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3
"$PY" bench/lobby_corpus.py
