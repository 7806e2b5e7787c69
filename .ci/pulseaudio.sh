#!/usr/bin/env bash
# Start a PulseAudio server with a null sink, for audio tests on a machine without a sound card.
#
# Idempotent: running it twice leaves one server and one "vsink". Works as root (CI containers)
# and as a normal user. Afterwards PortAudio's ALSA "default"/"pulse" devices reach PulseAudio
# (through libasound2-plugins): what is played to the default sink (vsink) can be read back from
# the default source (vsink.monitor), paced in real time.
#
# Needs: apt-get install -y --no-install-recommends pulseaudio pulseaudio-utils libasound2-plugins
# Exit status: 0 when the server answers and vsink is the default sink; non-zero with one message
# on stderr otherwise.
set -euo pipefail

SINK=vsink
die() { echo "pulseaudio.sh: $*" >&2; exit 1; }

command -v pulseaudio >/dev/null || die "pulseaudio not installed (apt-get install pulseaudio pulseaudio-utils libasound2-plugins)"
command -v pactl >/dev/null || die "pactl not installed (apt-get install pulseaudio-utils)"

# The server and its clients find each other through the same lookup (XDG_RUNTIME_DIR/pulse, or
# ~/.config/pulse/<machine-id>-runtime when it is unset), so run this in the environment the tests
# inherit; do not invent an XDG_RUNTIME_DIR here. Export PULSE_SERVER (printed below as "Server
# String") if the tests run elsewhere.
if ! pactl info >/dev/null 2>&1; then
    # --exit-idle-time=-1: the server would otherwise exit between test runs when no client is
    # connected. As root pulseaudio warns that system mode is advised; per-user mode still works
    # and keeps the socket where clients look by default.
    pulseaudio --start --exit-idle-time=-1 --disallow-exit --log-target=stderr 2>/tmp/pulseaudio-start.log \
        || die "pulseaudio --start failed: $(tail -n 3 /tmp/pulseaudio-start.log | tr '\n' ' ')"
    for _ in $(seq 1 50); do
        pactl info >/dev/null 2>&1 && break
        sleep 0.1
    done
    pactl info >/dev/null 2>&1 || die "pulseaudio started but does not answer pactl info within 5 s"
fi

# norewinds=1: without it an idle null sink renders in 2 s blocks, so a recording from its
# monitor sees nothing for up to 2 s after it starts (measured: ~1.95 s, every time).
# With it the sink's latency stays <= 50 ms and capture starts within ~50 ms.
module=$(pactl list short modules | awk -v s="sink_name=$SINK" '$2 == "module-null-sink" && index($0, s) {print $1; exit}')
if [ -n "$module" ] && ! pactl list short modules | awk -v m="$module" '$1 == m' | grep -q 'norewinds=1'; then
    pactl unload-module "$module" || die "cannot unload the old $SINK (module $module)"
    module=""
fi
if [ -z "$module" ]; then
    pactl load-module module-null-sink sink_name="$SINK" norewinds=1 \
        sink_properties=device.description=kiosk-null-sink >/dev/null \
        || die "cannot load module-null-sink"
fi
pactl set-default-sink "$SINK" || die "cannot set default sink $SINK"
pactl set-default-source "$SINK.monitor" || die "cannot set default source $SINK.monitor"

pactl info | grep -E '^(Server (Name|Version)|Server String|Default (Sink|Source)|Default Sample Specification)'
default_sink=$(pactl get-default-sink 2>/dev/null || pactl info | sed -n 's/^Default Sink: //p')
[ "$default_sink" = "$SINK" ] || die "default sink is '$default_sink', expected $SINK"
