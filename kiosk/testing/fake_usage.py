"""Token usage as the fake Realtime server reports it in ``response.done``.

Kept apart from :mod:`kiosk.testing.fake_conversation` because it is its own bookkeeping:
what each conversation item added to the context (so ``conversation.item.delete`` shrinks
it again), and the usage object at the documented rough rates, with the cached prefix the
real service reports. Pure arithmetic; no I/O.
"""

from __future__ import annotations

import math

from kiosk.testing.fake_script import JsonDict
from kiosk.testing.validation import Dialect


def text_tokens(text: str) -> int:
    # ~4 characters a token, the usual English rule of thumb.
    return math.ceil(len(text) / 4)


class UsageMeter:
    """The context one connection's responses re-read, and the usage that costs."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect: Dialect = dialect
        # The whole conversation is input to every response.
        self.context_audio_s = 0.0
        self.context_text_tokens = 40
        # What each item added to the context, so conversation.item.delete shrinks it again.
        self.item_context: dict[str, tuple[float, int]] = {}
        self.previous_input_tokens = 0

    def add_context(self, item_id: str, *, audio_s: float = 0.0, text_tokens: int = 0) -> None:
        """Count what an item (or, with ``item_id`` "", something unnamed) adds to the context."""
        self.context_audio_s += audio_s
        self.context_text_tokens += text_tokens
        if item_id:
            was_audio, was_text = self.item_context.get(item_id, (0.0, 0))
            self.item_context[item_id] = (was_audio + audio_s, was_text + text_tokens)

    def forget_context(self, item_id: str) -> None:
        audio_s, tokens = self.item_context.pop(item_id, (0.0, 0))
        self.context_audio_s = max(0.0, self.context_audio_s - audio_s)
        self.context_text_tokens = max(0, self.context_text_tokens - tokens)

    def usage(
        self, *, instructions: str, output_text_tokens: int, output_audio_s: float = 0.0
    ) -> JsonDict:
        """Token usage at the documented rough rates: 10/s user audio in, 20/s audio out.

        Every response re-reads the whole conversation, so input grows turn by turn, and
        the prefix that the previous response read counts as cached.
        """
        text_in = self.context_text_tokens + text_tokens(instructions)
        audio_in = round(self.context_audio_s * 10)
        input_tokens = text_in + audio_in
        cached = min(self.previous_input_tokens, input_tokens)
        self.previous_input_tokens = input_tokens
        audio_out = round(output_audio_s * 20)
        output_tokens = output_text_tokens + audio_out
        input_details: JsonDict = {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "cached_tokens": cached,
        }
        if self.dialect == "ga":
            cached_text = min(cached, text_in)
            input_details["cached_tokens_details"] = {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
            }
        return {
            "total_tokens": input_tokens + output_tokens,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "input_token_details": input_details,
            "output_token_details": {"text_tokens": output_text_tokens, "audio_tokens": audio_out},
        }
