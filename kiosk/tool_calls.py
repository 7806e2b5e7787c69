"""The model's function calls during a turn: each runs as a task on the kiosk's tools.

:class:`ToolCalls` starts one task per ``FunctionCallRequested``, reports
``ToolCallStarted`` / ``ToolCallFinished`` on the event stream, and hands each result to the
pipeline's ``deliver`` (which sends it upstream only if the call's connection and turn are
still current). The tasks of one response are kept together so the pipeline can wait for all
of them before asking for the spoken answer (:meth:`ToolCalls.then`). What the tools *do*
is ``kiosk.rag``'s business.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kiosk.config import RagSettings
from kiosk.core.bus import EventStream
from kiosk.core.events import Citation, ToolCallFinished, ToolCallStarted
from kiosk.core.realtime import FunctionCallRequested, RealtimeSession

log = logging.getLogger(__name__)

NO_TOOLS_OUTPUT = "error: no tools are available on this kiosk"


class ToolRunnerLike(Protocol):
    def schemas(self) -> list[dict[str, Any]]: ...

    def vocabulary(self) -> str: ...

    async def run_async(self, name: str, arguments: str, timeout_s: float) -> Any: ...


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What one call produced, for the connection (``session``) and turn that asked."""

    session: RealtimeSession
    turn_id: int
    call_id: str
    output: str
    citations: tuple[Citation, ...]


class ToolCalls:
    """Runs function calls as tasks, grouped by the response that asked for them.

    Args:
        tools: the knowledge tools (None: every call gets an error output).
        bus: ``ToolCallStarted`` / ``ToolCallFinished`` go here.
        clock: monotonic seconds.
        rag: ``tool_timeout_s`` (per call) and ``max_tool_calls`` (per response). Calls
            beyond the cap are ignored: no task, no output upstream, one log line. (An error
            output per extra call would still send one frame per call, which is what a
            hostile server asking for 300 calls wants; the API does not require an output
            for every call, and the model answers from the results it got.)
        deliver: called on the loop with each :class:`ToolOutput` once its call finished.
    """

    def __init__(
        self,
        tools: ToolRunnerLike | None,
        bus: EventStream,
        clock: Callable[[], float],
        rag: RagSettings,
        deliver: Callable[[ToolOutput], None],
    ) -> None:
        self.tools = tools
        self.bus = bus
        self.clock = clock
        self.timeout_s = rag.tool_timeout_s
        self.max_per_response = rag.max_tool_calls
        self._deliver = deliver
        self._tasks: dict[str, list[asyncio.Task[None]]] = {}
        self._ignored: set[str] = set()  # responses whose extra calls were logged
        self._waiting: set[asyncio.Task[None]] = set()  # the loop keeps only weak references

    def __bool__(self) -> bool:
        """Some call is still running (or its response has not finished yet)."""
        return bool(self._tasks)

    def start(self, session: RealtimeSession, call: FunctionCallRequested, turn_id: int) -> None:
        tasks = self._tasks.setdefault(call.response_id, [])
        if len(tasks) >= self.max_per_response:
            if call.response_id not in self._ignored:
                self._ignored.add(call.response_id)
                log.warning(
                    "response asked for more than %d tool calls: ignoring the rest",
                    self.max_per_response,
                )
            return
        self.bus.publish(ToolCallStarted(self.clock(), turn_id, call.name))
        tasks.append(asyncio.get_running_loop().create_task(self._run(session, call, turn_id)))

    def then(self, response_id: str, after: Callable[[], Awaitable[None]]) -> None:
        """Once every call of ``response_id`` finished (or failed), await ``after()``."""
        tasks = self._tasks.pop(response_id, [])
        self._ignored.discard(response_id)

        async def wait_then() -> None:
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            await after()

        task = asyncio.get_running_loop().create_task(wait_then())
        self._waiting.add(task)
        task.add_done_callback(self._waiting.discard)

    def cancel_all(self) -> None:
        for tasks in self._tasks.values():
            for task in tasks:
                task.cancel()
        self._tasks.clear()
        self._ignored.clear()

    async def _run(
        self, session: RealtimeSession, call: FunctionCallRequested, turn_id: int
    ) -> None:
        started = self.clock()
        ok = False
        citations: tuple[Citation, ...] = ()
        if self.tools is None:
            output = NO_TOOLS_OUTPUT
        else:
            result = await self.tools.run_async(call.name, call.arguments, self.timeout_s)
            output, ok = result.output, result.ok
            citations = tuple(result.citations or ())
        self.bus.publish(
            ToolCallFinished(self.clock(), turn_id, call.name, ok, (self.clock() - started) * 1000)
        )
        self._deliver(ToolOutput(session, turn_id, call.call_id, output, citations))
