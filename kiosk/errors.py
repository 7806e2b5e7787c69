"""Every exception kiosk raises on purpose, under one root.

    KioskError
    ├── ConfigError(ValueError)          bad settings; carries the dotted key
    ├── ProtocolError                    abstract
    │   ├── LocalProtocolError           we built an event the API would refuse (our bug)
    │   └── RemoteProtocolError          the server sent something unacceptable
    ├── InvalidTransition(AssertionError) the turn machine was fed an input its table forbids
    ├── UpstreamUnavailable              the Realtime endpoint cannot be reached now (retryable)
    │   └── UpstreamRejected             handshake refused for good (401/403): do not retry
    ├── BudgetExhausted                  a cost or connection budget is spent
    └── DeviceError(OSError)             an audio / GPIO device is missing or failed

Stdlib only: every layer may import this module.
"""

from __future__ import annotations


class KioskError(Exception):
    """Root of every error kiosk raises on purpose."""


class ConfigError(KioskError, ValueError):
    """A setting is missing, unknown, of the wrong type or out of range.

    ``key`` is the dotted path (``audio.input_device``); ``str(err)`` is one line
    that names it, fit for a terminal and a journal.
    """

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config: {key}: {problem}")


class ProtocolError(KioskError):
    """Abstract: the Realtime conversation went wrong. Use a subclass."""

    def __new__(cls, *args: object, **kwargs: object) -> ProtocolError:
        if cls is ProtocolError:
            raise TypeError(
                "ProtocolError is abstract: raise LocalProtocolError or RemoteProtocolError"
            )
        return super().__new__(cls, *args, **kwargs)


class LocalProtocolError(ProtocolError):
    """We tried to send something the protocol forbids (a bug in kiosk)."""


class RemoteProtocolError(ProtocolError):
    """The server sent something we cannot accept (bad JSON, bad base64, ...)."""


class InvalidTransition(KioskError, AssertionError):
    """The turn machine's table has no row for this (state, input)."""


class UpstreamUnavailable(KioskError):
    """The Realtime endpoint cannot be reached right now; retry later.

    ``retry_after_s`` carries a server hint (429 Retry-After) when there was one.
    """

    def __init__(
        self, message: str, retry_after_s: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.status = status  # the handshake's HTTP status, when there was one


class UpstreamRejected(UpstreamUnavailable):
    """The endpoint refused us for good (401/403, bad key or policy): do not retry in a loop."""


class BudgetExhausted(KioskError):
    """A daily/monthly token budget or the connection budget is spent."""


class DeviceError(KioskError, OSError):
    """An audio or GPIO device is missing, busy or failed."""
