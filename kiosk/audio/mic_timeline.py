"""Where each microphone frame lies on the clock the speaker's blocks are stamped by.

The echo canceller (:mod:`kiosk.audio.echo_cancel`) takes, for each microphone frame, the
reference heard while it was captured; the echo's lag behind that reference is measured once
and lined up (:mod:`kiosk.audio.echo_delay`), and the filter then models a fixed echo path. So
the frames' times must keep the relation the samples themselves have: the microphone is one
continuous stream, frame k starts ``k * frame_s`` after the first.

Each frame comes with a stamp (when its hand-over arrived, less the input latency the device
reports), and the stamps are noisy: through PulseAudio they moved 2-3 ms from frame to frame
and stood 20-60 ms off for whole stretches of the recording's first seconds (quiet hand-overs
in batches, the latency read before the stream's first timing update), while the samples kept
one fixed relation to the speaker's (lobby tuning mixes 073/074 through ``bench/pulse_aec.py``:
on the frame count the echo's lag stayed within ~0.3 ms over two answers). A timeline steered
towards every stamp (1 % a frame, as before) took ~10 s to leave a 60 ms start-up error: it
still moved 1 ms/s while the first answer played, after the lag had been lined up, and the
echo came to lead its reference by 6-16 ms, which the filter cannot cancel at all (the answer
paused itself). :class:`MicTimeline` keeps the count and moves only when the stamps' median
over the last ``WINDOW_FRAMES`` says it is ``STEP_S`` off (a start-up error, lost samples),
at once and by that much; a stamp ``REANCHOR_S`` off starts it afresh (the stream restarted).
"""

from __future__ import annotations

import math
import statistics
from collections import deque

# The stamps' offset from the timeline is judged over this many frames (1 s of 20 ms frames)...
WINDOW_FRAMES = 50
# ...from this many on...
MIN_FRAMES = 10
# ...and the timeline moves by their median when it is this far off (their frame-to-frame
# noise left the median within ~3 ms through PulseAudio; a lag lined up with the echo has
# ~3 ms to spare before the echo comes ahead of its reference).
STEP_S = 0.005
# A stamp further than this from the timeline starts it afresh (the stream restarted).
REANCHOR_S = 0.1
# Once the echo canceller has lined the echo up with its reference (:attr:`MicTimeline.held`),
# the median's steps stop: the lag lined up holds on the sample count, and what the stamps still
# say then is their own error (speexpa29, traces through PulseAudio, 7fdf16e: quiet hand-overs
# in batches moved the median 25-60 ms and back while idle and left it 5 ms off, so the timeline
# stepped 5.0 ms at a later answer's first frame (tuning mix 074: the lag re-measured 5.1 ms
# off, the filter restarted) or mid-answer (073 at 16.45 s: the trusted filter leaked, the answer
# paused itself). What truly moves the echo after that (a lost block, the clocks' drift) the
# canceller measures again at each new stretch and drop (kiosk.audio.echo_cancel.RELINE_MIN_MS).


class MicTimeline:
    """:meth:`place` each frame's stamp in order; it returns when that frame started."""

    def __init__(self, frame_s: float) -> None:
        self.frame_s = frame_s
        self._next_s = -math.inf  # where the next frame starts
        self._offsets: deque[float] = deque(maxlen=WINDOW_FRAMES)  # stamp - timeline
        self.last_s = -math.inf  # where the last frame placed started
        self.moves = 0  # times the timeline moved (not counting fresh starts)
        self.held = False  # no more median steps (only fresh starts)

    def place(self, stamp_s: float) -> float:
        """The start of the frame stamped ``stamp_s`` (the frame after the last one placed)."""
        at = self._next_s
        offset = stamp_s - at
        if not math.isfinite(at) or abs(offset) > REANCHOR_S:
            self._offsets.clear()
            at = stamp_s
            self.held = False  # (a new stream: its first stamps may be off again)
        else:
            offsets = self._offsets
            offsets.append(offset)
            if len(offsets) >= MIN_FRAMES and not self.held:
                median = statistics.median(offsets)
                if abs(median) >= STEP_S:
                    at += median
                    self._offsets = deque((x - median for x in offsets), maxlen=WINDOW_FRAMES)
                    self.moves += 1
        self._next_s = at + self.frame_s
        self.last_s = at
        return at
