"""What a SIGHUP reload reads, and what it keeps open across reloads.

Owns: :func:`load_for_reload` (the settings read again; every way that can fail, including
a parser that runs out of stack and a file with no settings at all, is one
:class:`~kiosk.errors.ConfigError` line, and the daemon keeps the settings it runs with) and
:class:`KnowledgeTools` (the open knowledge base: reused while ``[rag]`` and its key are
unchanged, otherwise opened anew and the previous one closed once the new pipeline is in,
so a hundred reloads hold no more files or memory than one).

Not owned: when a reload runs (the daemon waits for the answer in progress) and the pipeline
swap (``kiosk.daemon``).

A file with no settings: an empty or comment-only file on SIGHUP is far more often a
truncated copy or an editor's half-written save than a wish to reset every setting, so it
is refused. To mean it, keep one table header (``[realtime]``) in the file.
"""

from __future__ import annotations

import argparse
import logging
import threading
import tomllib
from pathlib import Path
from typing import Any

from kiosk.config import DEFAULT_CONFIG_PATH, Config
from kiosk.errors import ConfigError
from kiosk.settings import load_run_settings

log = logging.getLogger(__name__)


def settings_path(args: argparse.Namespace) -> Path:
    return Path(args.config) if getattr(args, "config", None) else DEFAULT_CONFIG_PATH


def blank_file_problem(path: Path) -> str | None:
    """Why reloading ``path`` would silently drop every setting, or None."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return f"{path} does not exist (restore it; a restart without it runs on defaults)"
    except (OSError, UnicodeDecodeError):
        return None  # the loader says what is wrong with it
    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError):
        return None  # the loader says what is wrong with it
    if raw:
        return None
    return (
        f"{path} has no settings (empty or only comments): a reload will not reset every "
        "setting to its default; if that is meant, keep one table header such as [realtime]"
    )


def load_for_reload(args: argparse.Namespace) -> Config:
    """The settings a reload would switch to. Raises ConfigError (one line) for any problem."""
    problem = blank_file_problem(settings_path(args))
    if problem is not None:
        raise ConfigError("(file)", problem)
    try:
        return load_run_settings(args)
    except ConfigError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, OSError) as exc:
        # The loader turns every expected problem into ConfigError; anything else must still
        # not end the daemon through a reload.
        raise ConfigError("(file)", f"cannot be loaded ({type(exc).__name__})") from None


class KnowledgeTools:
    """The knowledge base the pipeline's tools search, kept open across reloads.

    Use :meth:`stage` while building a pipeline, then :meth:`commit` once it replaced the
    old one (closes a knowledge base nothing uses any more) or :meth:`rollback` if the
    reload failed; :meth:`close` on shutdown.
    """

    def __init__(self) -> None:
        self._current: Any = None
        self._current_key: object = None
        self._staged: Any = None
        self._staged_key: object = None
        self._opened = False  # whether stage() opened _staged (else it reuses _current)

    def stage(self, cfg: Config) -> tuple[Any, Any]:
        """``(ToolRunner | None, citations_from_middle_tier)`` for a pipeline on ``cfg``."""
        from kiosk.rag import ToolRunner, citations_from_middle_tier

        self.rollback()
        voicerag = cfg.realtime.provider == "voicerag"  # the middle tier runs the tools
        key: object = "voicerag" if voicerag else (cfg.rag, cfg.credentials.azure_search_api_key)
        if self._current_key == key:
            knowledge = self._current
        else:
            knowledge = None if voicerag else _open_knowledge(cfg)
            self._opened = True
        self._staged, self._staged_key = knowledge, key
        if knowledge is None:
            return None, citations_from_middle_tier
        runner = ToolRunner(knowledge, top_k=cfg.rag.top_k, max_result_chars=cfg.rag.max_result_chars)
        return runner, citations_from_middle_tier

    def commit(self) -> None:
        """The staged knowledge base is in use; close the one it replaced."""
        if self._staged_key is None:
            return
        if self._opened:
            _close(self._current)
            self._current, self._current_key = self._staged, self._staged_key
        self._staged = self._staged_key = None
        self._opened = False

    def rollback(self) -> None:
        """The reload failed: close what :meth:`stage` opened, keep the current one."""
        if self._opened:
            _close(self._staged)
        self._staged = self._staged_key = None
        self._opened = False

    def close(self) -> None:
        self.rollback()
        _close(self._current)
        self._current = self._current_key = None

    def prepare(self) -> None:
        """A turn started: let a knowledge base that opens lazily do so on a background
        thread while the visitor speaks, not on the first search's clock."""
        prepare = getattr(self._current, "prepare", None)
        if prepare is not None:
            threading.Thread(target=prepare, name="kiosk-knowledge-prepare", daemon=True).start()


def _open_knowledge(cfg: Config) -> Any:
    from kiosk.rag import KnowledgeError, open_knowledge_base

    try:
        return open_knowledge_base(cfg)
    except KnowledgeError as exc:
        log.error("knowledge base unavailable: %s (answers will not be grounded)", exc)
        return None


def _close(knowledge: Any) -> None:
    close = getattr(knowledge, "close", None)
    if close is not None:
        try:
            close()
        except Exception as exc:  # closing must never take the daemon down
            log.warning("closing the old knowledge base failed: %s", exc)
