#!/usr/bin/env bash
# Start a PulseAudio-protocol sound server with a null sink, for audio tests without a sound card.
#
# Idempotent: running it twice leaves one server and one "vsink". Works as root (CI containers)
# and as a normal user. Afterwards PortAudio's ALSA "default" device reaches the server
# (libasound2-plugins for PulseAudio, pipewire-alsa for PipeWire): what is played to the
# default sink (vsink) can be read back from the default source (vsink.monitor), paced in
# real time.
#
# Server, in order: one that already answers `pactl info`; else PulseAudio
#   (apt-get install -y --no-install-recommends pulseaudio pulseaudio-utils libasound2-plugins);
# else PipeWire (pipewire pipewire-pulse pipewire-alsa wireplumber pulseaudio-utils dbus), which
#   needs XDG_RUNTIME_DIR exported to the tests as well (defaults to /run/user/<uid> here).
# Exit status: 0 when the server answers and vsink is the default sink; non-zero with one
# message on stderr otherwise.
set -euo pipefail

SINK=vsink
LOG_DIR=${TMPDIR:-/tmp}
die() { echo "pulseaudio.sh: $*" >&2; exit 1; }

command -v pactl >/dev/null || die "pactl not installed (apt-get install pulseaudio-utils)"

wait_for_server() {
    for _ in $(seq 1 50); do
        pactl info >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

start_pulseaudio() {
    # --exit-idle-time=-1: the server would otherwise exit between test runs when no client is
    # connected. As root pulseaudio warns that system mode is advised; per-user mode works and
    # keeps the socket where clients look by default (XDG_RUNTIME_DIR/pulse, or
    # ~/.config/pulse/<machine-id>-runtime when XDG_RUNTIME_DIR is unset): run this script in
    # the environment the tests inherit.
    pulseaudio --start --exit-idle-time=-1 --disallow-exit --log-target=stderr \
        2>"$LOG_DIR/kiosk-pulseaudio.log" \
        || die "pulseaudio --start failed: $(tail -n 3 "$LOG_DIR/kiosk-pulseaudio.log" | tr '\n' ' ')"
    wait_for_server || die "pulseaudio started but does not answer pactl info within 5 s"
}

start_pipewire() {
    # PipeWire finds its socket only through XDG_RUNTIME_DIR; WirePlumber (the session
    # manager that links streams to the null sink) needs a D-Bus session bus.
    export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
    mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    if [ -z "${DBUS_SESSION_BUS_ADDRESS:-}" ]; then
        export DBUS_SESSION_BUS_ADDRESS="unix:path=$XDG_RUNTIME_DIR/bus"
        if [ ! -S "$XDG_RUNTIME_DIR/bus" ]; then
            command -v dbus-daemon >/dev/null || die "PipeWire needs dbus-daemon (apt-get install dbus)"
            dbus-daemon --session --fork --address="$DBUS_SESSION_BUS_ADDRESS" \
                || die "cannot start a D-Bus session bus for WirePlumber"
        fi
    fi
    local daemon
    for daemon in pipewire wireplumber pipewire-pulse; do
        command -v "$daemon" >/dev/null || die "$daemon not installed"
        # -r S,R,D: a killed daemon can linger as a zombie (no init reaping in containers).
        if ! pgrep -u "$(id -u)" -r S,R,D -x "$daemon" >/dev/null; then
            setsid "$daemon" </dev/null >"$LOG_DIR/kiosk-$daemon.log" 2>&1 &
            sleep 0.3
        fi
    done
    wait_for_server || die "PipeWire started but pipewire-pulse does not answer within 5 s (see $LOG_DIR/kiosk-pipewire*.log)"
    echo "pulseaudio.sh: PipeWire: export XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR for the tests" >&2
}

if ! pactl info >/dev/null 2>&1; then
    if command -v pulseaudio >/dev/null; then
        start_pulseaudio
    elif command -v pipewire >/dev/null; then
        start_pipewire
    else
        die "no sound server: apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
    fi
fi

server=$(pactl info | sed -n 's/^Server Name: //p')
module_args="sink_name=$SINK"
if [ "$server" = "pulseaudio" ]; then
    # norewinds=1: without it an idle PulseAudio null sink renders in 2 s blocks, so a
    # recording from its monitor sees nothing for up to 2 s after it starts (measured:
    # ~1.95 s, every time). With it the latency stays <= 50 ms and capture starts at once.
    module_args="$module_args norewinds=1"
fi

module=$(pactl list short modules | awk -v s="sink_name=$SINK" '$2 == "module-null-sink" && index($0, s) {print $1; exit}')
if [ -n "$module" ] && [ "$server" = "pulseaudio" ] \
    && ! pactl list short modules | awk -v m="$module" '$1 == m' | grep -q 'norewinds=1'; then
    pactl unload-module "$module" || die "cannot unload the old $SINK (module $module)"
    module=""
fi
if [ -z "$module" ]; then
    # shellcheck disable=SC2086  # module_args is a list of key=value words
    pactl load-module module-null-sink $module_args \
        sink_properties=device.description=kiosk-null-sink >/dev/null \
        || die "cannot load module-null-sink on $server"
    for _ in $(seq 1 20); do  # PipeWire creates the node asynchronously
        pactl list short sinks | awk '{print $2}' | grep -qx "$SINK" && break
        sleep 0.1
    done
fi
pactl set-default-sink "$SINK" || die "cannot set default sink $SINK"
pactl set-default-source "$SINK.monitor" || die "cannot set default source $SINK.monitor"

pactl info | grep -E '^(Server (Name|Version|String)|Default (Sink|Source)|Default Sample Specification)'
default_sink=$(pactl get-default-sink 2>/dev/null || pactl info | sed -n 's/^Default Sink: //p')
[ "$default_sink" = "$SINK" ] || die "default sink is '$default_sink', expected $SINK"
