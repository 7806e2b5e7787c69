"""Local wake word detection (``wake.mode = "wakeword"``) with pymicro-wakeword.

Owns the model, its streaming state, the threshold and the refractory period. It does
not endpoint: after a detection the app opens a turn and the local VAD decides when the
visitor stopped speaking, as in VAD mode.

Why this package and model: ``pymicro-wakeword`` (Apache-2.0, OHF-Voice) ships its
microWakeWord TFLite models and the TFLite C library inside the wheel (nothing is
downloaded at run time) and runs at ~2 ms CPU per second of audio. Its models
(okay_nabu, hey_jarvis, hey_mycroft, alexa) come from the ESPHome micro-wake-word-models
collection, whose NOTICE licenses the weights under Apache-2.0, commercial use included.
By contrast openWakeWord's pre-trained models are CC BY-NC-SA 4.0 (non-commercial) and
Picovoice Porcupine needs a commercial access key. ``okay_nabu`` is the default: it is the
Home Assistant Voice PE wake word and was trained for seven languages. The other names
are trademarks of third parties (Amazon, Marvel, Mycroft AI); a path to a
microWakeWord ``.json`` model config can be given instead (a custom trained word).

Licence caveat: the microWakeWord training *features* dataset is CC BY-NC 4.0, and whether
the stock models are therefore restricted is an open question upstream
(OHF-Voice/micro-wake-word#100); the published licence of the weights is Apache-2.0.
Known weakness (bench/bench_wake.py): phrases that start like it, "OK, no, but..." or
"Okay, now where is ...", can wake it even at the tuned cutoff.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError

log = logging.getLogger(__name__)

BUNDLED_MODELS = ("okay_nabu", "hey_jarvis", "hey_mycroft", "alexa")
SCORE_LOG_INTERVAL_S = 1.0


@dataclass(frozen=True, slots=True)
class Detection:
    """The wake word was heard: open a turn (trigger ``"wakeword"``)."""

    t_s: float
    model: str
    score: float


class WakeWordDetector:
    """Streaming wake word detector over 16 kHz PCM16 mono frames of any length."""

    def __init__(
        self, model: str = "okay_nabu", threshold: float = 0.0, refractory_s: float = 2.0
    ) -> None:
        """
        Args:
            model: a bundled model name (:data:`BUNDLED_MODELS`) or a path to a microWakeWord
                model ``.json`` (with its ``.tflite`` beside it).
            threshold: detection score 0..1 (mean of the model's sliding window);
                0 = the cutoff the model's authors tuned (okay_nabu 0.85). Lower values
                wake on "okay, now ..." (see bench/bench_wake.py).
            refractory_s: after a detection, further detections are ignored this long.
                A detection also needs the score to have dropped below the threshold
                since the last one, so one utterance fires once.

        Raises:
            ValueError: an unknown model name or an out-of-range threshold;
                ConfigError (a ValueError) for a custom ``.json`` that is not a model config.
            ImportError / OSError: pymicro-wakeword or its TFLite library cannot load
                (``kiosk check`` reports this through :func:`check_wakeword`).
        """
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be 0 (model default) or below 1, got {threshold}")
        if refractory_s < 0:
            raise ValueError(f"refractory_s must be >= 0, got {refractory_s}")
        self.model_name = model
        self.refractory_s = refractory_s
        self._model, self._features = _load(model)
        self.threshold = threshold or float(self._model.probability_cutoff)
        self._stride = max(int(self._model.stride), 1)
        self.last_score = 0.0  # the latest model score (for tuning tools and benches)
        self._fed = 0
        self._quiet_until = float("-inf")
        # Fire on the rising edge only: the score stays high for a few hundred ms.
        self._armed = True
        self._window_max = 0.0
        self._window_start: float | None = None

    def process(self, frame16k: bytes, now: float) -> Detection | None:
        """Feed one frame; ``now`` is the monotonic time at the end of the frame.

        Returns a :class:`Detection` when the score crosses the threshold outside the
        refractory period, else None. Scores are in the debug log (``= wake score``).
        """
        scores: list[float] = []
        for features in self._features.process_streaming(frame16k):
            score = self._model.process_streaming_prob(features)
            self._fed += 1
            # The model runs once per `stride` feature windows (30 ms) and answers 0.0
            # in between: only the calls that ran it carry a score.
            if score is not None and self._fed % self._stride == 0:
                scores.append(float(score))
        if not scores:
            return None
        best = max(scores)
        self.last_score = best
        self._log_scores(best, now)
        if best < self.threshold:
            self._armed = True
            return None
        if not self._armed:  # still the same utterance of the wake word
            return None
        if now < self._quiet_until:
            log.debug(
                "= wake score %.3f ignored (refractory for %.2f s)", best, self._quiet_until - now
            )
            return None
        self._quiet_until = now + self.refractory_s
        self._armed = False
        log.info(
            "wake word %s detected (score %.3f, threshold %.2f)",
            self.model_name,
            best,
            self.threshold,
        )
        return Detection(t_s=now, model=self.model_name, score=best)

    def reset(self) -> None:
        """Forget streaming state (e.g. after a turn, so the answer's audio leaves no trace)."""
        self._features.reset()
        self._model.reset()
        self._fed = 0
        self._armed = True

    def close(self) -> None:
        """Free the TFLite interpreter. Idempotent."""
        self._model.close()

    def _log_scores(self, score: float, now: float) -> None:
        # One line per second with the peak score: enough to tune the threshold from
        # the journal without 33 lines a second.
        if self._window_start is None:
            self._window_start = now
        self._window_max = max(self._window_max, score)
        if now - self._window_start >= SCORE_LOG_INTERVAL_S:
            if self._window_max >= 0.05 and log.isEnabledFor(logging.DEBUG):
                log.debug(
                    "= wake score peak %.3f over %.1f s (threshold %.2f)",
                    self._window_max,
                    now - self._window_start,
                    self.threshold,
                )
            self._window_start = now
            self._window_max = 0.0


def check_wakeword(model: str) -> str | None:
    """Why wake word mode cannot run here, in one line, or None if it can (for ``kiosk check``)."""
    try:
        detector = WakeWordDetector(model)
    except (ImportError, OSError, ValueError) as exc:
        return f"wake word model {model!r} unavailable: {exc}"
    detector.close()
    return None


MAX_MODEL_CONFIG_BYTES = 64 * 1024


def _model_error(path: Path, problem: str) -> ConfigError:
    return ConfigError("wake.wakeword_model", f"{path}: {problem}"[:300])


def check_model_config(path: Path) -> None:
    """Raise a one-line ConfigError when ``path`` is not a usable microWakeWord ``.json``
    (the library indexes it blindly: a missing key would be a KeyError at start-up)."""
    try:
        if path.stat().st_size > MAX_MODEL_CONFIG_BYTES:
            raise _model_error(path, f"larger than {MAX_MODEL_CONFIG_BYTES // 1024} KiB")
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _model_error(path, "does not exist") from None
    except OSError as exc:
        raise _model_error(path, f"cannot be read ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise _model_error(path, "is not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise _model_error(path, f"is not valid JSON ({str(exc).splitlines()[0]})") from None
    micro = config.get("micro") if isinstance(config, dict) else None
    if not isinstance(config, dict) or not isinstance(micro, dict):
        raise _model_error(path, 'needs a "micro" object (a microWakeWord model config)')
    if not isinstance(config.get("model"), str) or not config["model"]:
        raise _model_error(path, 'needs "model": the .tflite file name')
    if not isinstance(config.get("wake_word"), str):
        raise _model_error(path, 'needs "wake_word": the phrase, as text')
    cutoff = micro.get("probability_cutoff")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, float)) or not 0 < cutoff < 1:
        raise _model_error(path, 'needs "micro.probability_cutoff" between 0 and 1')
    window = micro.get("sliding_window_size")
    if isinstance(window, bool) or not isinstance(window, int) or not 1 <= window <= 1000:
        raise _model_error(path, 'needs "micro.sliding_window_size", a whole number 1..1000')
    if not (path.parent / config["model"]).is_file():
        raise _model_error(path, "its model file (\"model\") is not next to it")


def _load(model: str) -> tuple[Any, Any]:
    from pymicro_wakeword import MicroWakeWord, MicroWakeWordFeatures, Model

    if model in BUNDLED_MODELS:
        mww = MicroWakeWord.from_builtin(Model(model))
    elif model.endswith(".json"):
        check_model_config(Path(model))
        try:
            mww = MicroWakeWord.from_config(model)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a shape we missed
            raise _model_error(Path(model), f"not a microWakeWord model config ({exc!r})") from None
    else:
        raise ValueError(
            f"unknown wake word model {model!r} "
            f"(bundled: {', '.join(BUNDLED_MODELS)}; or a .json path)"
        )
    return mww, MicroWakeWordFeatures()
