"""A local stand-in for the Azure AI Search REST endpoints the kiosk uses.

Serves, on 127.0.0.1 port 0: get/create index, documents upload and delete
(``search.index`` with ``@search.action``: upload replaces a document, merge and
mergeOrUpload update the fields given, null included) and query (``search.post.search``).
It records every request (method, path, JSON body, headers) so tests can assert what the
real SDK sent. Documents live in a dict; a query returns the stored documents whose content
contains any query word (``*`` lists them all, paged by ``skip``/``top``, ordered by
``orderby`` "FIELD asc" and filtered by "FIELD gt 'VALUE'" when given; a ``skip`` over
100,000 is refused as the service does), or the canned ``search_results`` when a test sets
them.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kiosk.config import RagSettings

KEY = "test-key"  # the api-key the tests pass; the emulator records what arrives


@dataclass
class Recorded:
    method: str
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class SearchState:
    key_field: str = "chunk_id"
    indexes: dict[str, dict[str, Any]] = field(default_factory=dict)
    documents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    search_results: list[dict[str, Any]] | None = None
    fail_with: int = 0  # answer every request with this status when non-zero
    unretrievable: set[str] = field(default_factory=set)  # a query selecting one gets 400
    requests: list[Recorded] = field(default_factory=list)


_INDEX = re.compile(r"^/indexes(?:\('(?P<a>[^']+)'\)|/(?P<b>[^/?]+))(?P<rest>/[^?]*)?$")


class _Handler(BaseHTTPRequestHandler):
    state: SearchState

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def _reply(self, status: int, payload: Any = None) -> None:
        body = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = self.path.split("?", 1)[0]
        st = self.state
        st.requests.append(
            Recorded(self.command, path, body, {k.lower(): v for k, v in self.headers.items()})
        )
        if st.fail_with:
            self._reply(
                st.fail_with,
                {"error": {"code": "ServiceUnavailable", "message": "emulated outage"}},
            )
            return
        if self.headers.get("api-key") != "test-key":
            self._reply(403, {"error": {"code": "Forbidden", "message": "bad api-key"}})
            return
        m = _INDEX.match(path)
        if not m:
            self._reply(404, {"error": {"code": "NotFound", "message": path}})
            return
        name = m.group("a") or m.group("b")
        rest = m.group("rest") or ""
        if rest == "" and self.command == "GET":
            if name in st.indexes:
                self._reply(200, st.indexes[name])
            else:
                self._reply(
                    404, {"error": {"code": "ResourceNameNotFound", "message": f"No index {name}"}}
                )
        elif rest == "" and self.command == "PUT":
            st.indexes[name] = body
            self._reply(201, body)
        elif rest == "/docs/search.index" and self.command == "POST":
            docs = st.documents.setdefault(name, {})
            results = []
            for action in body["value"]:
                key = action[st.key_field]
                kind = action.get("@search.action")
                fields = {k: v for k, v in action.items() if not k.startswith("@")}
                if kind == "delete":
                    docs.pop(key, None)
                elif kind == "upload":
                    docs[key] = fields
                else:  # merge / mergeOrUpload
                    docs[key] = {**docs.get(key, {}), **fields}
                results.append(
                    {"key": key, "status": True, "errorMessage": None, "statusCode": 201}
                )
            self._reply(200, {"value": results})
        elif rest == "/docs/search.post.search" and self.command == "POST":
            refused = set((body.get("select") or "").split(",")) & st.unretrievable
            if refused:
                message = f"Field '{sorted(refused)[0]}' is not retrievable"
                self._reply(400, {"error": {"code": "InvalidRequestParameter", "message": message}})
                return
            if body.get("skip", 0) > 100_000:
                message = "Value must be between 0 and 100000. Parameter name: $skip"
                self._reply(400, {"error": {"code": "InvalidRequestParameter", "message": message}})
                return
            self._reply(200, {"value": self._search(name, body)})
        else:
            self._reply(404, {"error": {"code": "NotFound", "message": f"{self.command} {path}"}})

    def _search(self, name: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        if self.state.search_results is not None:
            return self.state.search_results
        words = (body.get("search") or "").lower().split()
        docs = self.state.documents.get(name, {})
        if words == ["*"]:
            listed = [{"@search.score": 1.0, **doc} for doc in docs.values()]
            if body.get("filter"):
                m = re.fullmatch(r"(\w+) gt '((?:[^']|'')*)'", body["filter"])
                assert m, body["filter"]
                bound = m.group(2).replace("''", "'")
                listed = [d for d in listed if str(d.get(m.group(1))) > bound]
            if body.get("orderby"):
                by, direction = body["orderby"].split()
                assert direction == "asc"
                listed.sort(key=lambda d: str(d.get(by)))
            skip = body.get("skip", 0)
            return listed[skip : skip + body.get("top", 50)]
        out = []
        for doc in docs.values():
            text = " ".join(str(v) for v in doc.values()).lower()
            score = sum(text.count(w) for w in words)
            if score:
                out.append({"@search.score": float(score), **doc})
        out.sort(key=lambda d: -d["@search.score"])
        return out[: body.get("top", 50)]

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        if self.path.startswith("/indexes?") or self.path == "/indexes":
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length))
            self.state.requests.append(
                Recorded("POST", "/indexes", body, dict(self.headers.items()))
            )
            self.state.indexes[body["name"]] = body
            self._reply(201, body)
            return
        self._handle()


class AzureSearchEmulator:
    """Context manager: ``with AzureSearchEmulator() as emu: emu.endpoint``."""

    def __init__(self) -> None:
        self.state = SearchState()
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> AzureSearchEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def requests_to(self, suffix: str) -> list[Recorded]:
        return [r for r in self.state.requests if r.path.endswith(suffix)]


def azure_settings(emu: AzureSearchEmulator, **kw: str) -> RagSettings:
    """rag settings for the Azure backend pointed at ``emu``'s index "kiosk"."""
    return RagSettings(backend="azure", azure_endpoint=emu.endpoint, azure_index="kiosk", **kw)
