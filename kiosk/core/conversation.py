"""The server-side conversation as the kiosk knows it: item ids in order, turn by turn.

Pure. Each ``response.create`` bills the whole conversation so far as input tokens, and audio
tokens cost several times text tokens, so a conversation left to grow makes every answer
dearer than the last. :class:`ConversationItems` remembers which items the server holds
(from ``conversation.item.created`` / ``added`` / ``deleted``) and says which to delete to
keep only the last few visitor turns, or all of them when a new visitor walks up: visitor B
never hears visitor A's context, and the input of a long conversation stays flat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ITEM_EVENTS = frozenset(
    {"conversation.item.created", "conversation.item.added", "conversation.item.deleted"}
)
MAX_ITEMS = 512  # a hostile server cannot make this grow without bound


class ConversationItems:
    """Item ids in conversation order; a user message starts a visitor turn."""

    def __init__(self) -> None:
        self._items: dict[str, bool] = {}  # item id -> starts a visitor turn (insertion order)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def turns(self) -> int:
        return sum(self._items.values())

    def observe(self, raw: Mapping[str, Any]) -> None:
        """Feed an item event (see :data:`ITEM_EVENTS`); anything malformed is ignored."""
        if raw.get("type") == "conversation.item.deleted":
            item_id = raw.get("item_id")
            if isinstance(item_id, str):
                self._items.pop(item_id, None)
            return
        item = raw.get("item")
        if not isinstance(item, Mapping):
            return
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id or item_id in self._items:
            return  # GA sends created and added for one item: count it once
        if len(self._items) >= MAX_ITEMS:
            self._items.pop(next(iter(self._items)))
        self._items[item_id] = item.get("type") == "message" and item.get("role") == "user"

    def older_than_turns(self, keep: int) -> list[str]:
        """Ids of every item before the last ``keep`` visitor turns (all items when 0)."""
        ids = list(self._items)
        starts = [i for i, item_id in enumerate(ids) if self._items[item_id]]
        if keep <= 0:
            return ids
        if len(starts) <= keep:
            return []
        return ids[: starts[-keep]]

    def forget(self, item_ids: list[str]) -> list[dict[str, Any]]:
        """The ``conversation.item.delete`` events for ``item_ids`` (dropped here at once)."""
        for item_id in item_ids:
            self._items.pop(item_id, None)
        return [{"type": "conversation.item.delete", "item_id": i} for i in item_ids]
