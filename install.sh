#!/usr/bin/env bash
# install.sh: turn a Debian 12 / Raspberry Pi OS board into a kiosk, or set up a dev venv.
#
#   sudo ./install.sh                      install or update (idempotent; re-run after a failure)
#   sudo ./install.sh --api-key-file FILE  ... and store the API key from FILE ("-" = stdin)
#   sudo ./install.sh --aec                ... and route audio through the sound server's echo canceller
#                                          (PipeWire or PulseAudio: whichever is installed)
#   sudo ./install.sh --uninstall [--purge]  remove (keeps /etc/kiosk and /var/lib/kiosk unless --purge)
#   ./install.sh --dev                     a development venv in ./.venv (no root needed)
#
# The API key is never echoed or put on a command line: it comes from --api-key-file, from
# $KIOSK_API_KEY / $OPENAI_API_KEY / $AZURE_OPENAI_API_KEY, or from a hidden prompt, and
# lands in /etc/kiosk/credentials/<NAME> (root, 0600), which the unit hands over with
# LoadCredential=. Every failure prints one clear line and exits non-zero.
set -Eeuo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PREFIX="${KIOSK_PREFIX:-/opt/kiosk}"
ETC=/etc/kiosk
CRED_DIR="$ETC/credentials"
STATE=/var/lib/kiosk
UNIT_PATH=/etc/systemd/system/kiosk.service
DROPIN_DIR=/etc/systemd/system/kiosk.service.d
BIN_LINK=/usr/local/bin/kiosk
USER_NAME=kiosk
# The local answer engine's voices (kiosk/local/tts.py): eSpeak NG for English, Open JTalk
# with its dictionary for Japanese (all Debian main). The Japanese HTS voice is in Debian
# *contrib*: installed when the apt sources have contrib, else Japanese uses eSpeak NG's voice.
SPEECH_PACKAGES=(espeak-ng open-jtalk open-jtalk-mecab-naist-jdic)
JA_VOICE_PACKAGE=hts-voice-nitech-jp-atr503-m001
# gcc, python3-dev and portaudio19-dev build pyaudio (no Linux wheels); libasound2-plugins lets
# ALSA's "default" reach a sound server; alsa-utils gives staff arecord/aplay/alsamixer;
# libspeexdsp1 (~100 KB) is the in-process echo canceller (audio.echo_cancel = "speex").
# libpulse0 is the microphone and speaker without PortAudio on a PulseAudio/PipeWire system
# (audio.backend = "auto"/"pulse").
APT_PACKAGES=(python3 python3-venv python3-dev gcc libc6-dev portaudio19-dev
              libasound2-plugins alsa-utils ca-certificates libspeexdsp1 libpulse0
              "${SPEECH_PACKAGES[@]}")

MODE=install
PURGE=0
AEC=0
API_KEY_FILE=""
NO_START=0
DEV_VENV="$REPO/.venv"
ARGS=("$@")

say()  { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die()  { printf 'install.sh: error: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*"; }

# Any command that fails without its own message still says where and what.
# shellcheck disable=SC2154  # rc is assigned inside the trap string
trap 'rc=$?; printf "install.sh: error: \"%s\" failed (exit %d, line %d); fix that and re-run: it resumes where it stopped\n" "$BASH_COMMAND" "$rc" "$LINENO" >&2; exit "$rc"' ERR

usage() {
    # `install.sh --help | head` closes the pipe early: that is not a failed install step.
    trap - ERR
    sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    cat <<'EOF'

Options:
  --api-key-file FILE  read the API key from FILE ("-" = standard input)
  --aec                set up the sound server's echo-cancel source/sink (PipeWire or
                       PulseAudio, whichever is installed: none is installed for you)
                       and point the config at them (measured slower than the default
                       half-duplex guard through PulseAudio, with self-interruptions at
                       the start of a first answer: see README, footnote 21)
  --no-start           install and enable, but do not (re)start the service
  --uninstall          stop and remove the service and /opt/kiosk
  --purge              with --uninstall: also remove /etc/kiosk, /var/lib/kiosk and the kiosk user
  --dev                create a development venv (./.venv, or --venv PATH) with test extras
  --venv PATH          where --dev puts the venv
  -h, --help           this help

Environment: KIOSK_API_KEY, OPENAI_API_KEY, AZURE_OPENAI_API_KEY, AZURE_SEARCH_API_KEY
(non-interactive keys), KIOSK_PREFIX (default /opt/kiosk).
Exit status: 0 done, 1 a step failed (the message says which), 2 bad usage.
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --uninstall) MODE=uninstall ;;
        --purge) PURGE=1 ;;
        --dev) MODE=dev ;;
        --aec) AEC=1 ;;
        --no-start) NO_START=1 ;;
        --api-key-file)
            [ $# -ge 2 ] || { echo "install.sh: --api-key-file needs a FILE" >&2; exit 2; }
            API_KEY_FILE="$2"; shift ;;
        --api-key-file=*) API_KEY_FILE="${1#*=}" ;;
        --venv)
            [ $# -ge 2 ] || { echo "install.sh: --venv needs a PATH" >&2; exit 2; }
            DEV_VENV="$2"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$PURGE" = 1 ] && [ "$MODE" != uninstall ]; then
    echo "install.sh: --purge only goes with --uninstall" >&2; exit 2
fi
# Fail before changing anything, not after a minute of apt and pip.
if [ -n "$API_KEY_FILE" ] && [ "$API_KEY_FILE" != - ] && [ ! -r "$API_KEY_FILE" ]; then
    die "cannot read --api-key-file $API_KEY_FILE"
fi

systemd_running() { [ -d /run/systemd/system ]; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "run as root: sudo $0 ${ARGS[*]}"
}

# --- packages -----------------------------------------------------------------------------

apt_install() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say "apt packages already installed: $*"
        return 0
    fi
    command -v apt-get >/dev/null || die "apt-get not found: this installer supports Debian 12 / Raspberry Pi OS"
    step "installing apt packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || die "apt-get update failed: check the network and /etc/apt/sources.list"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed (see above)"
}

# Installs what it can; says what is missing instead of failing (a contrib package on a board
# whose apt sources have no contrib, say).
apt_install_optional() {  # WHAT-IT-IS-FOR PKG...
    local why="$1" pkg missing=()
    shift
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    if apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 \
             && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; }; then
        say "installed ${missing[*]}"
    else
        warn "could not install ${missing[*]} (${why})"
    fi
}

check_python() {
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        || die "python3 >= 3.11 is needed (found $(python3 -V 2>&1)); Debian 12 / Pi OS bookworm has it"
}

# --- user, directories --------------------------------------------------------------------

ensure_user() {
    local group
    for group in audio gpio; do
        if ! getent group "$group" >/dev/null; then
            groupadd --system "$group"
            say "created group $group"
        fi
    done
    if ! id -u "$USER_NAME" >/dev/null 2>&1; then
        useradd --system --user-group --home-dir "$STATE" --no-create-home \
            --shell /usr/sbin/nologin --comment "voice kiosk" "$USER_NAME"
        say "created system user $USER_NAME"
    fi
    usermod -a -G audio,gpio "$USER_NAME"
}

ensure_dirs() {
    install -d -m 0750 -o root -g "$USER_NAME" "$ETC"
    install -d -m 0700 -o root -g root "$CRED_DIR"
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$STATE"
}

# --- the venv -----------------------------------------------------------------------------

ensure_venv() {
    local venv="$PREFIX/venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import sys, pip' 2>/dev/null; then
        say "venv $venv exists"
    else
        step "creating venv $venv"
        rm -rf "$venv"  # a half-made venv from an interrupted run
        install -d -m 0755 "$PREFIX"
        python3 -m venv "$venv" || die "python3 -m venv failed: is python3-venv installed?"
    fi
    step "installing kiosk from $REPO into $venv"
    # Build from a copy of what the package needs: pip's in-tree build would leave root-owned
    # build/ and *.egg-info in the (often user-owned, maybe read-only) checkout.
    local src
    src="$(mktemp -d)"
    tar -C "$REPO" --exclude=__pycache__ -cf - pyproject.toml README.md kiosk | tar -C "$src" -xf - \
        || die "cannot copy the package sources from $REPO"
    # Dependencies first, then kiosk itself forced: an unchanged version number must not
    # leave old code in place after a git pull.
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q "${src}[audio]" \
        || die "pip install failed (see above): check the network and that portaudio19-dev is installed"
    "$venv/bin/pip" install --disable-pip-version-check --no-input -q --no-deps --force-reinstall "$src" \
        || die "pip install of kiosk itself failed (see above)"
    rm -rf "$src"
    if grep -qs "Raspberry Pi" /proc/device-tree/model; then
        # gpiozero's pin factory for current Raspberry Pi OS (Pi 5 has no /dev/gpiomem).
        "$venv/bin/pip" install --disable-pip-version-check --no-input -q lgpio \
            || die "pip install lgpio failed (see above)"
    fi
    ln -sfn "$venv/bin/kiosk" "$BIN_LINK"
    # The unit's Documentation= points here: staff on the board read it without the checkout.
    if [ -f "$REPO/README.md" ]; then
        install -m 0644 "$REPO/README.md" "$PREFIX/README.md"
    fi
}

kiosk_py() { "$PREFIX/venv/bin/python" "$@"; }

# --- config and credentials ---------------------------------------------------------------

ensure_config() {
    local example="$REPO/config/kiosk.toml"
    [ -f "$example" ] || die "$example is missing: run install.sh from a complete kiosk checkout"
    install -m 0640 -o root -g "$USER_NAME" "$example" "$ETC/kiosk.toml.example"
    if [ -e "$ETC/kiosk.toml" ]; then
        if cmp -s "$example" "$ETC/kiosk.toml"; then
            say "$ETC/kiosk.toml is the example, unchanged"
        else
            say "kept your edited $ETC/kiosk.toml (the new example is $ETC/kiosk.toml.example)"
        fi
    else
        install -m 0640 -o root -g "$USER_NAME" "$example" "$ETC/kiosk.toml"
        say "wrote $ETC/kiosk.toml from the example: edit it, then: sudo systemctl reload kiosk"
    fi
    local problem
    if ! problem="$(kiosk_py - "$ETC/kiosk.toml" <<'PY' 2>&1
import sys
from kiosk.config import load_config_file
from kiosk.errors import ConfigError
try:
    load_config_file(sys.argv[1], {}, require_key=False)
except ConfigError as exc:
    print(exc)
    sys.exit(1)
PY
)"; then
        die "$ETC/kiosk.toml is not valid: $problem (fix it and re-run)"
    fi
}

# Which credential the configured provider needs: OPENAI_API_KEY, AZURE_OPENAI_API_KEY or "".
key_name() {
    kiosk_py - "$ETC/kiosk.toml" <<'PY'
import sys
from kiosk.config import load_config_file
cfg = load_config_file(sys.argv[1], {}, require_key=False)
p = cfg.realtime.provider
print("OPENAI_API_KEY" if p == "openai" else "AZURE_OPENAI_API_KEY" if p.startswith("azure") else "")
PY
}

write_credential() {  # NAME; the value comes on stdin so it never appears in argv or ps
    local name="$1" tmp value
    IFS= read -r value || true
    value="${value%$'\r'}"
    [ -n "$value" ] || die "the API key for $name is empty"
    case "$value" in *[[:space:]]*) die "the API key for $name contains whitespace: check the file" ;; esac
    tmp="$(umask 077 && mktemp "$CRED_DIR/.$name.XXXXXX")"
    printf '%s\n' "$value" > "$tmp"
    chmod 0600 "$tmp"
    chown root:root "$tmp"
    mv -f "$tmp" "$CRED_DIR/$name"
    say "stored $name in $CRED_DIR/$name (mode 0600; not shown)"
}

ensure_credentials() {
    local name
    name="$(key_name)" || die "cannot read realtime.provider from $ETC/kiosk.toml"
    if [ -n "${AZURE_SEARCH_API_KEY:-}" ]; then
        write_credential AZURE_SEARCH_API_KEY <<< "$AZURE_SEARCH_API_KEY"
    fi
    if [ -z "$name" ]; then
        say "provider needs no API key (voicerag middle tier)"
        return 0
    fi
    if [ -n "$API_KEY_FILE" ]; then
        if [ "$API_KEY_FILE" = - ]; then
            write_credential "$name"
        else
            [ -r "$API_KEY_FILE" ] || die "cannot read --api-key-file $API_KEY_FILE"
            write_credential "$name" < "$API_KEY_FILE"
        fi
    elif [ -n "${KIOSK_API_KEY:-}" ]; then
        write_credential "$name" <<< "$KIOSK_API_KEY"
    elif [ -n "${!name:-}" ]; then
        write_credential "$name" <<< "${!name}"
    elif [ -s "$CRED_DIR/$name" ]; then
        say "kept the stored $name"
    elif [ -t 0 ]; then
        local value
        read -r -s -p "API key for $name (input hidden): " value
        echo
        write_credential "$name" <<< "$value"
    else
        warn "no $name given (--api-key-file, \$KIOSK_API_KEY or \$$name): until $CRED_DIR/$name exists the on-device local engine answers (no network, no cost)"
    fi
}

# --- echo cancellation (--aec) -------------------------------------------------------------

# Echo cancellation runs in the kiosk user's own sound server (a lingering user manager
# starts it at boot). Both variants make a virtual source "echo-cancel-source" with the
# speaker's echo removed, and the sink "echo-cancel-sink" the answer must play to.
aec_pipewire() {
    local conf="$1/.config/pipewire/pipewire.conf.d"
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$1/.config" "$1/.config/pipewire" "$conf"
    cat > "$conf/kiosk-echo-cancel.conf" <<'EOF'
# Written by kiosk install.sh --aec: PipeWire's WebRTC echo canceller.
context.modules = [
  { name = libpipewire-module-echo-cancel
    args = {
      library.name = aec/libspa-aec-webrtc
      capture.props  = { node.name = "kiosk_ec_capture" }
      source.props   = { node.name = "echo-cancel-source" node.description = "kiosk echo-cancelled mic" }
      sink.props     = { node.name = "echo-cancel-sink" node.description = "kiosk echo-cancelled speaker" }
      playback.props = { node.name = "kiosk_ec_playback" }
    }
  }
]
EOF
    chown "$USER_NAME:$USER_NAME" "$conf/kiosk-echo-cancel.conf"
    say "configured PipeWire's echo canceller for user $USER_NAME ($conf/kiosk-echo-cancel.conf)"
}

aec_pulseaudio() {
    local conf="$1/.config/pulse"
    install -d -m 0750 -o "$USER_NAME" -g "$USER_NAME" "$1/.config" "$conf"
    cat > "$conf/default.pa" <<'EOF'
# Written by kiosk install.sh --aec: PulseAudio's WebRTC echo canceller. Without its analog
# gain control, which would drive the microphone's volume (33 % at start, then moving while
# answers play): the kiosk's speech levels are absolute, and each step is an echo path change.
.include /etc/pulse/default.pa
load-module module-echo-cancel aec_method=webrtc aec_args="analog_gain_control=0" source_name=echo-cancel-source sink_name=echo-cancel-sink
set-default-source echo-cancel-source
set-default-sink echo-cancel-sink
EOF
    chown "$USER_NAME:$USER_NAME" "$conf/default.pa"
    say "configured PulseAudio's echo canceller for user $USER_NAME ($conf/default.pa)"
}

ensure_aec() {
    # Never installs a sound server: pipewire-pulse and pulseaudio conflict, and swapping one
    # for the other rewires every program's audio on the board. Staff choose; we configure.
    local uid
    uid="$(id -u "$USER_NAME")"
    if command -v pipewire-pulse >/dev/null; then
        aec_pipewire "$STATE"
    elif command -v pulseaudio >/dev/null; then
        aec_pulseaudio "$STATE"
    else
        die "--aec needs a sound server: sudo apt install pipewire-pulse wireplumber pipewire-alsa (or pulseaudio), then re-run"
    fi
    install -d -m 0755 "$DROPIN_DIR"
    # The kiosk user's own PipeWire (lingering user manager) owns the sound card; the service
    # reaches it through its pulse socket. ProtectHome=tmpfs hides /run/user except that one
# ("-": a missing socket directory is the audio adapter's error to report, not a failed start).
    cat > "$DROPIN_DIR/aec.conf" <<EOF
# Written by kiosk install.sh --aec: audio through PipeWire's echo canceller.
[Unit]
Wants=user@$uid.service
After=user@$uid.service

[Service]
Environment=XDG_RUNTIME_DIR=/run/user/$uid
Environment=PULSE_SERVER=unix:/run/user/$uid/pulse/native
Environment=PULSE_SOURCE=echo-cancel-source
Environment=PULSE_SINK=echo-cancel-sink
ProtectHome=tmpfs
BindPaths=-/run/user/$uid/pulse
EOF
    kiosk_py - "$ETC/kiosk.toml" <<'PY' || die "could not point $ETC/kiosk.toml at the echo canceller"
"""Set [audio] input_device/output_device = "pulse", echo_cancelled = true, keeping the rest."""
import re, sys, tomllib
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
wanted = {"input_device": '"pulse"', "output_device": '"pulse"', "echo_cancelled": "true"}
lines = text.splitlines()
start = next((i for i, l in enumerate(lines) if re.match(r"\s*\[audio\]\s*(#.*)?$", l)), None)
if start is None:
    lines += ["", "[audio]"]
    start = len(lines) - 1
end = next((i for i in range(start + 1, len(lines)) if re.match(r"\s*\[", lines[i])), len(lines))
for key, value in wanted.items():
    pattern = re.compile(rf"\s*{key}\s*=")
    hit = next((i for i in range(start + 1, end) if pattern.match(lines[i])), None)
    line = f"{key} = {value}  # install.sh --aec"
    if hit is None:
        lines.insert(start + 1, line)
        end += 1
    else:
        lines[hit] = line
new = "\n".join(lines) + "\n"
tomllib.loads(new)  # never write a file that does not parse
if new != text:
    open(path, "w", encoding="utf-8").write(new)
    print("install.sh: pointed [audio] in", path, "at the echo canceller")
PY
    if systemd_running; then
        loginctl enable-linger "$USER_NAME" || die "loginctl enable-linger $USER_NAME failed"
        say "the kiosk user's PipeWire starts at boot (linger enabled)"
    else
        say "skipped loginctl enable-linger: systemd is not running here"
    fi
}

# --- the unit -----------------------------------------------------------------------------

install_unit() {
    local unit="$REPO/systemd/kiosk.service" tmp
    [ -f "$unit" ] || die "$unit is missing: run install.sh from a complete kiosk checkout"
    tmp="$(mktemp)"
    sed "s#/opt/kiosk/venv/bin/kiosk#$PREFIX/venv/bin/kiosk#g" "$unit" > "$tmp"
    install -m 0644 "$tmp" "$UNIT_PATH"
    rm -f "$tmp"
    say "installed $UNIT_PATH"
}

start_unit() {  # without an API key it starts too: the on-device local engine answers
    if ! systemd_running; then
        say "skipped systemctl daemon-reload/enable/start: systemd is not running here (container or chroot?);"
        say "  on the booted board run: sudo systemctl enable --now kiosk"
        return 0
    fi
    systemctl daemon-reload
    systemctl enable kiosk.service >/dev/null 2>&1 || die "systemctl enable kiosk failed"
    say "enabled kiosk.service (starts at boot)"
    if [ "$NO_START" = 1 ]; then
        say "not starting (--no-start)"
    elif systemctl restart kiosk.service; then
        say "kiosk.service is running: systemctl status kiosk; journalctl -u kiosk -f"
    else
        journalctl -u kiosk.service -n 15 --no-pager >&2 || true
        die "kiosk.service did not start (log above); run: sudo kiosk check"
    fi
}

# --- modes --------------------------------------------------------------------------------

do_install() {
    require_root
    step "kiosk install from $REPO"
    check_python_or_apt
    ensure_user
    ensure_dirs
    ensure_venv
    ensure_config
    ensure_credentials
    if [ "$AEC" = 1 ]; then
        ensure_aec
    fi
    install_unit
    start_unit
    step "done. Next: sudo kiosk check   (and kiosk index add DOCS as user kiosk: sudo -u kiosk kiosk index add DIR)"
}

check_python_or_apt() {
    apt_install "${APT_PACKAGES[@]}"
    apt_install_optional "Debian contrib not in the apt sources? Japanese answers then use eSpeak NG's voice" \
        "$JA_VOICE_PACKAGE"
    check_python
}

do_uninstall() {
    require_root
    step "kiosk uninstall"
    if systemd_running; then
        systemctl disable --now kiosk.service >/dev/null 2>&1 || true
    else
        say "skipped systemctl stop/disable: systemd is not running here"
    fi
    rm -f "$UNIT_PATH"
    rm -rf "$DROPIN_DIR"
    systemd_running && systemctl daemon-reload
    if [ -L "$BIN_LINK" ] && [ "$(readlink "$BIN_LINK")" = "$PREFIX/venv/bin/kiosk" ]; then
        rm -f "$BIN_LINK"
    fi
    rm -rf "$PREFIX"
    say "removed the unit, $PREFIX and $BIN_LINK"
    if [ "$PURGE" = 1 ]; then
        rm -rf "$ETC" "$STATE"
        if id -u "$USER_NAME" >/dev/null 2>&1; then
            if systemd_running; then loginctl disable-linger "$USER_NAME" >/dev/null 2>&1 || true; fi
            userdel "$USER_NAME" || die "userdel $USER_NAME failed (is a process still running as $USER_NAME?)"
        fi
        getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME"
        say "purged $ETC, $STATE and the $USER_NAME user"
    else
        say "kept $ETC (config, credentials) and $STATE (index, usage); --purge removes them"
    fi
}

do_dev() {
    step "development venv $DEV_VENV"
    check_python
    # aec: livekit for audio.echo_cancel = "webrtc" (wheels only), so its tests run.
    local extras="test,aec"
    if pkg-config --exists portaudio-2.0 2>/dev/null || [ -e /usr/include/portaudio.h ]; then
        extras="$extras,audio"
    elif [ "$(id -u)" -eq 0 ]; then
        apt_install portaudio19-dev python3-dev gcc python3-venv
        extras="$extras,audio"
    else
        warn "portaudio19-dev is not installed: skipping pyaudio (sudo apt install portaudio19-dev, then re-run)"
    fi
    # systemd-python (C build against libsystemd) only for the test that shows why kiosk/service
    # speaks sd_notify and the journal protocol itself (libsystemd's sends block when full).
    if [ "$(id -u)" -eq 0 ] && ! pkg-config --exists libsystemd 2>/dev/null; then
        apt_install libsystemd-dev pkg-config
    fi
    if pkg-config --exists libsystemd 2>/dev/null; then
        extras="$extras,systemd"
    fi
    if [ "$(id -u)" -eq 0 ]; then
        apt_install "${SPEECH_PACKAGES[@]}"
        apt_install_optional "Debian contrib not in the apt sources? Japanese answers then use eSpeak NG's voice" \
            "$JA_VOICE_PACKAGE"
    elif ! command -v espeak-ng >/dev/null; then
        warn "espeak-ng is not installed (not root: skipped): the local answer engine cannot speak" \
             "(sudo apt install ${SPEECH_PACKAGES[*]} $JA_VOICE_PACKAGE)"
    fi
    [ -x "$DEV_VENV/bin/python" ] || python3 -m venv "$DEV_VENV" || die "python3 -m venv failed: install python3-venv"
    "$DEV_VENV/bin/pip" install --disable-pip-version-check -q -e "${REPO}[${extras}]" \
        || die "pip install -e failed (see above)"
    say "ready: . $DEV_VENV/bin/activate && pytest"
}

case "$MODE" in
    install) do_install ;;
    uninstall) do_uninstall ;;
    dev) do_dev ;;
esac
