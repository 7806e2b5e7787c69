"""The endpointer's suspicion of a barge-in: loud voice over an answer, not yet proved an onset.

Pausing the answer is cheap and undone after a blip (a cough resumes it where it paused), so
the suspicion counts the voice detector's quick first opinion and pauses at
``vad.barge_in_pause_ms``; proving the onset (and flushing the answer) is the endpointer's.
:class:`BargeInSuspicion` is that half of :class:`~kiosk.core.endpointing.Endpointer`, whose
``__init__`` sets up the state it reads.
"""

from __future__ import annotations

from kiosk.config import VadSettings

# Once loud voice has paused the answer (vad.barge_in_pause_ms), a gap this long after its last
# loud frame (unvoiced or quiet: between the visitor's syllables) neither ends the onset run nor
# resumes the answer. Without it the gap after the first syllable of a quiet "stop" ended the
# run: the answer resumed, its echo came back over the next syllable, and the 15 loud frames
# that prove a barge-in were never heard in one run (the e2e quiet-stop test: a 180 ms gap).
SUSPECT_GAP_MS = 200
# Without a canceller, loud frames of one voiced run add up to the suspicion that pauses the
# answer only while each comes under this long after the one before: at -6 dB the raw echo is
# voiced for seconds on end, and its rare frames over the bar (a syllable's end, where the
# room's tail outlasts the envelope) come a second apart (fresh tuning seed 5 mix 077 paused
# itself at 7.00 s on two frames 0.98 s apart). A visitor's syllables come closer. (Tuning split
# + seeds 3-23 replayed: 200 ms slowed 3 barge-ins at -12 dB by 20-40 ms, 800 ms none.)
SUSPECT_RUN_GAP_MS = 800


class BargeInSuspicion:
    """The suspicion half of the endpointer (its state is set up by ``Endpointer.__init__``)."""

    settings: VadSettings
    frame_ms: int
    echo_relearn: bool
    _in_speech: bool
    _double_talk_now: bool
    _onset_loud: int
    _close_loud: int
    _suspect_frames: int
    _paused_for: int
    _gap_left: int
    _gap_frames: int
    echo_guarded: bool  # (Endpointer's property: the answer plays or its echo tail rings)

    @property
    def suspected_speech_ms(self) -> int:
        """Loud voiced audio heard towards an onset not yet proved (0 when none).

        Counts the voice detector's quick first opinion too (webrtcvad before Silero
        confirms it): pausing the answer is cheap and undone after a blip, so it must not
        wait for the second opinion.
        """
        suspect = self._suspicion_frames()
        if self._gap_left > 0:  # a gap between syllables after the answer paused
            suspect = max(suspect, self._paused_for)
        return suspect * self.frame_ms

    def _suspicion_frames(self) -> int:
        if self._in_speech:
            return 0
        if self._double_talk_now:
            # Behind a trusted canceller a frame that is clearly not the echo (double talk in
            # the linear output, EchoGuard._double_talk) pauses the answer at once.
            return max(self._onset_loud, self._suspect_frames, -(-self.settings.barge_in_pause_ms // self.frame_ms))
        # With AEC the first opinion alone needs a frame more: a canceller's residual leaks for
        # a few frames now and then, and webrtcvad calls it voice (Silero does not). Trusted or
        # not: a canceller that has just become trusted on a first answer still leaks a frame or
        # two just over the bar (lobby tuning seed 4, -6 dB, mixes 074 and 077).
        leak = self.echo_relearn and self.echo_guarded and not self._onset_loud
        # Without one, only loud frames close together add up (SUSPECT_RUN_GAP_MS).
        run = self._onset_loud if self.echo_relearn else self._close_loud
        return max(run, self._suspect_frames - leak)

    def _hold_suspicion(self, loud_voice: bool, guard: bool) -> None:
        """After this frame: a loud voiced frame of a suspicion that pauses the answer keeps
        it paused ``SUSPECT_GAP_MS`` more; any other frame counts that time down."""
        suspect = self._suspicion_frames()
        if guard and loud_voice and suspect * self.frame_ms >= self.settings.barge_in_pause_ms:
            self._paused_for = max(self._paused_for, suspect)
            self._gap_left = self._gap_frames
        elif self._gap_left > 0:
            self._gap_left -= 1
            self._paused_for = self._paused_for if self._gap_left else 0

    def _forget_suspicion(self) -> None:
        self._suspect_frames = self._paused_for = self._gap_left = 0
        self._double_talk_now = False
