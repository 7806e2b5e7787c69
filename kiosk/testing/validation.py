"""Strict validation of Realtime API events against the openai SDK's pydantic types.

Owns: "is this event, as a JSON-shaped dict, one the Realtime API of a given dialect
declares?" for both directions (client -> server, server -> client). The SDK's types
are the machine-checkable truth (see docs realtime-protocol.md):

- GA dialect: ``openai.types.realtime`` (``RealtimeClientEvent`` / ``RealtimeServerEvent``)
- beta dialect: ``openai.types.beta.realtime`` (the same two names)

Each is a ``Union`` of pydantic models keyed on ``"type"``. We validate with a
``TypeAdapter`` over that union with a ``"type"`` discriminator, then walk the parsed
models: the SDK models tolerate unknown keys (``extra="allow"``), but the real API
refuses them (``unknown_parameter``), and a beta key sent to a GA endpoint is the
commonest mistake, so any key a model does not declare is reported too.

Does not own: what the fake server does with an event, or building events (that is
``kiosk/core/realtime.py``). Needs the ``openai`` package (a test dependency), which is
imported lazily so importing this module costs nothing.
"""

from __future__ import annotations

import functools
import importlib
import typing
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Union

import pydantic

Dialect = Literal["ga", "beta"]
Direction = Literal["client", "server"]

# The Realtime API's own limit for one client event is far larger; this only stops a
# runaway error list when a test sends something huge and wrong.
_MAX_ERRORS = 20


def validate_client_event(event: object, dialect: Dialect) -> list[str]:
    """Check one client -> server event of ``dialect``.

    Args:
        event: the event as parsed from JSON (normally a ``dict``).
        dialect: ``"ga"`` or ``"beta"``.

    Returns:
        One line per problem, each starting with the event type (``"?"`` when it has
        none); an empty list means the event is valid.

    Raises:
        ValueError: ``dialect`` is neither ``"ga"`` nor ``"beta"``.
    """
    return _validate(event, dialect, "client")


def validate_server_event(event: object, dialect: Dialect) -> list[str]:
    """Check one server -> client event of ``dialect``; same contract as
    :func:`validate_client_event`."""
    return _validate(event, dialect, "server")


def _validate(event: object, dialect: Dialect, direction: Direction) -> list[str]:
    adapter = _adapter(dialect, direction)
    label = _event_label(event)
    try:
        parsed = adapter.validate_python(event)
    except pydantic.ValidationError as exc:
        return [f"{label}: {_format_error(err, label)}" for err in exc.errors()[:_MAX_ERRORS]]
    return [f"{label}: undeclared key {path}" for path in _undeclared_keys(parsed, "")][
        :_MAX_ERRORS
    ]


def _event_label(event: object) -> str:
    if isinstance(event, dict):
        event_type = event.get("type")
        if isinstance(event_type, str) and event_type:
            return event_type
    return "?"


def _format_error(err: Any, label: str) -> str:
    # err is pydantic_core.ErrorDetails (a TypedDict); the discriminated-union tag is
    # the first loc element and repeats the label, so keep the path after it.
    loc = [str(part) for part in err.get("loc", ())]
    if loc and loc[0] == label:
        loc = loc[1:]
    where = ".".join(loc)
    message = str(err.get("msg", "invalid"))
    return f"{where}: {message}" if where else message


@functools.cache
def _adapter(dialect: Dialect, direction: Direction) -> pydantic.TypeAdapter[Any]:
    """Build (once per dialect and direction) the discriminated-union validator."""
    if dialect not in ("ga", "beta"):
        raise ValueError(f"unknown Realtime dialect {dialect!r} (expected 'ga' or 'beta')")
    types_module = importlib.import_module(
        "openai.types.realtime" if dialect == "ga" else "openai.types.beta.realtime"
    )
    alias = (
        types_module.RealtimeClientEvent
        if direction == "client"
        else types_module.RealtimeServerEvent
    )
    members = _union_members(alias)
    # Union[tuple] builds the Union at run time; the SDK spells the discriminator with
    # its own PropertyInfo, which pydantic does not read, so we restate it.
    union: Any = Union[members]  # noqa: UP007
    return pydantic.TypeAdapter(Annotated[union, pydantic.Field(discriminator="type")])


def _union_members(alias: object) -> tuple[type[pydantic.BaseModel], ...]:
    """The models of an SDK ``Annotated[Union[...], PropertyInfo(...)]`` alias."""
    inner = alias
    if typing.get_origin(inner) is Annotated:
        inner = typing.get_args(inner)[0]
    members = typing.get_args(inner)
    if not members or not all(
        isinstance(m, type) and issubclass(m, pydantic.BaseModel) for m in members
    ):
        raise TypeError(f"not a union of pydantic models: {alias!r}")
    return tuple(members)


def _undeclared_keys(value: object, path: str) -> Iterator[str]:
    """Yield the dotted path of every key some parsed model did not declare."""
    if isinstance(value, pydantic.BaseModel):
        for key in value.model_extra or {}:
            yield _join(path, key)
        for name, field in type(value).model_fields.items():
            yield from _undeclared_keys(getattr(value, name), _join(path, field.alias or name))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _undeclared_keys(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        # Free-form objects (tool JSON schemas, metadata) stay plain dicts: only models
        # nested inside them are checked.
        for key, item in value.items():
            yield from _undeclared_keys(item, _join(path, str(key)))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
