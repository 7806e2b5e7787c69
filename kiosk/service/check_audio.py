"""``kiosk check`` audio: devices found and opened at the needed rates; the 3 s record/play test.

The audio adapters (kiosk.audio, pyaudio) are imported lazily: without them this check
fails with an install hint instead of the doctor failing to start.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Literal

from kiosk.config import Config
from kiosk.errors import KioskError
from kiosk.service.check_result import CheckResult, Printer, fail, ok, one_line

AUDIO_TEST_S = 3.0
# How long a late-starting input stream may take before the test reports what it got.
STREAM_START_GRACE_S = 2.0
SILENCE_DBFS = -60.0
VAD_RATE_HZ = 16000


def check_audio(cfg: Config, printer: Printer) -> CheckResult:
    """List the devices (one note line each), find the configured input and output, check
    they accept the needed rates, and open both streams briefly (the input must deliver)."""
    try:
        from kiosk.audio import devices
        from kiosk.audio.pulse_host import host_factory
    except ImportError as exc:
        return fail(
            "audio", f"cannot load audio support: {one_line(exc)}", "pip install 'kiosk[audio]'"
        )
    a = cfg.audio
    factory = host_factory(a.backend, a.input_device, a.output_device)  # as kiosk run opens
    try:
        host = factory()
    except (KioskError, OSError, ImportError) as exc:
        return fail(
            "audio", one_line(exc), "install portaudio (apt install portaudio19-dev) and pyaudio"
        )
    try:
        return _check_devices(cfg, printer, devices, host, factory)
    finally:
        host.terminate()


def _check_devices(
    cfg: Config, printer: Printer, devices: Any, host: Any, factory: Any
) -> CheckResult:
    try:
        found = devices.list_devices(host)
    except (KioskError, OSError, ImportError) as exc:
        return fail(
            "audio", one_line(exc), "install portaudio (apt install portaudio19-dev) and pyaudio"
        )
    for d in found:
        kinds = "/".join(
            k for k, n in (("in", d.max_input_channels), ("out", d.max_output_channels)) if n
        )
        printer.note(f"[{d.index}] {d.name} ({kinds}, {d.default_rate_hz:.0f} Hz)")
    if not found:
        return fail(
            "audio", "no audio devices", "is the sound card connected? are you in group audio?"
        )
    parts: list[str] = []
    kind: Literal["input", "output"]
    for kind, spec, wanted, preferred in (
        ("input", cfg.audio.input_device, cfg.audio.capture_rate_hz, [16000, 48000, 32000, 8000]),
        ("output", cfg.audio.output_device, cfg.audio.playback_rate_hz, [24000, 48000, 16000]),
    ):
        try:
            device = devices.find_device(spec, kind, host)
            rate = devices.negotiate_rate(device, kind, [wanted] if wanted else preferred, host)
        except (KioskError, OSError) as exc:
            return fail(
                "audio",
                f"{kind}: {one_line(exc)}",
                f"set audio.{kind}_device to a name or index listed above",
            )
        if wanted and rate != wanted:
            return fail(
                "audio",
                f"{kind} {device.name!r} does not open at {wanted} Hz",
                f"set audio.{'capture' if kind == 'input' else 'playback'}_rate_hz = 0",
            )
        parts.append(f"{kind} {device.name!r} at {rate} Hz")
    try:
        _open_streams_briefly(cfg, factory)
    except (KioskError, OSError) as exc:
        return fail(
            "audio",
            f"cannot open streams: {one_line(exc)}",
            "is another program holding the device?",
        )
    return ok("audio", "; ".join(parts))


def _open_streams_briefly(cfg: Config, factory: Any) -> None:
    from kiosk.audio.playback import PlaybackBuffer
    from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource

    got_frame = threading.Event()
    source = PyAudioSource(
        cfg.audio.input_device,
        rate_hz=VAD_RATE_HZ,
        frame_ms=cfg.audio.frame_ms,
        on_frame=lambda _frame: got_frame.set(),
        capture_rate_hz=cfg.audio.capture_rate_hz,
        pyaudio_factory=factory,
    )
    sink = PyAudioSink(
        cfg.audio.output_device,
        PlaybackBuffer(),
        playback_rate_hz=cfg.audio.playback_rate_hz,
        pyaudio_factory=factory,
    )
    try:
        source.start()
        sink.start()
        if not got_frame.wait(2.0):
            raise KioskError("the input stream delivered no audio within 2 s")
    finally:
        source.close()
        sink.close()


def room_levels(cfg: Config, pcm: bytes) -> tuple[float | None, float]:
    """The ambient floor the endpointer would learn from ``pcm`` and the onset level it gives."""
    from kiosk.core.endpointing import Endpointer

    endpointer = Endpointer(lambda frame: False, cfg.vad, cfg.audio.frame_ms)
    frame_bytes = VAD_RATE_HZ * cfg.audio.frame_ms // 1000 * 2
    for i in range(0, len(pcm) - frame_bytes + 1, frame_bytes):
        endpointer.process(pcm[i : i + frame_bytes])
    return endpointer.noise_floor_dbfs, endpointer.onset_level_dbfs


def run_audio_test(cfg: Config, duration_s: float = AUDIO_TEST_S) -> CheckResult:
    """Record ``duration_s`` from the configured input, play it back, report the level."""
    try:
        import numpy as np

        from kiosk.audio.playback import PlaybackBuffer
        from kiosk.audio.pulse_host import host_factory
        from kiosk.audio.pyaudio_io import PyAudioSink, PyAudioSource
        from kiosk.audio.resample import Resampler
    except ImportError as exc:
        return fail(
            "audio test",
            f"cannot load audio support: {one_line(exc)}",
            "pip install 'kiosk[audio]'",
        )
    frames: list[bytes] = []
    lock = threading.Lock()
    wanted_bytes = int(duration_s * VAD_RATE_HZ) * 2
    recorded_enough = threading.Event()
    received_bytes = 0

    def on_frame(frame: bytes) -> None:
        nonlocal received_bytes
        with lock:
            frames.append(frame)
            received_bytes += len(frame)
            if received_bytes >= wanted_bytes:
                recorded_enough.set()

    a = cfg.audio
    factory = host_factory(a.backend, a.input_device, a.output_device)
    try:
        source = PyAudioSource(
            cfg.audio.input_device,
            rate_hz=VAD_RATE_HZ,
            frame_ms=cfg.audio.frame_ms,
            on_frame=on_frame,
            capture_rate_hz=cfg.audio.capture_rate_hz,
            pyaudio_factory=factory,
        )
        source.start()
        # Wait for duration_s of *audio*, not of wall time: a stream that starts late would
        # otherwise report a short recording. A CLI tool, not the daemon: blocking is fine here.
        recorded_enough.wait(duration_s + STREAM_START_GRACE_S)
        source.close()
        with lock:
            pcm = b"".join(frames)[:wanted_bytes]
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        if samples.size == 0:
            return fail("audio test", "recorded nothing", "check audio.input_device")
        rms = math.sqrt(float(np.mean(samples**2))) / 32768
        peak = float(np.abs(samples).max()) / 32768
        level = 20 * math.log10(max(rms, 1e-9))
        peak_db = 20 * math.log10(max(peak, 1e-9))
        buffer = PlaybackBuffer()
        resampler = Resampler(VAD_RATE_HZ, 24000)
        buffer.write(resampler.process(pcm) + resampler.flush())
        sink = PyAudioSink(
            cfg.audio.output_device,
            buffer,
            volume=cfg.audio.output_volume,
            playback_rate_hz=cfg.audio.playback_rate_hz,
            pyaudio_factory=factory,
        )
        sink.start()
        deadline = time.monotonic() + duration_s + 2.0
        while not buffer.is_idle and time.monotonic() < deadline:
            time.sleep(0.05)
        sink.close()
    except (KioskError, OSError) as exc:
        return fail("audio test", one_line(exc), "check the devices listed by kiosk check")
    floor_db, onset_db = room_levels(cfg, pcm)
    room = (
        f"room ambient {floor_db:.1f} dBFS, turns open above {onset_db:.1f} dBFS"
        if floor_db is not None
        else ""
    )
    detail = (
        f"recorded {samples.size / VAD_RATE_HZ:.1f} s, level {level:.1f} dBFS"
        f" (peak {peak_db:.1f} dBFS), played back" + (f"; {room}" if room else "")
    )
    if level < SILENCE_DBFS:
        return fail(
            "audio test",
            detail + ": silence",
            "check the microphone, its gain (alsamixer) and audio.input_device",
        )
    return ok("audio test", detail)
