"""Audio adapters: live capture and playback (PortAudio), WAV files, resampling, frames.

``resample`` (soxr streams), ``frames`` (exact VAD frames), ``wav`` (files), ``playback``
(the speaker's flushable queue that counts played ms), ``devices`` (finding PortAudio
devices) and ``pyaudio_io`` (``PyAudioSource`` / ``PyAudioSink``). pyaudio is imported
only when a device is opened, so everything else works without it.
"""
