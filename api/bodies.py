"""Request bodies: read with a size limit, parsed strictly (ledger.canonical.parse_strict).

FastAPI's own JSON parsing accepts duplicate keys and floats, so no route lets it parse a body.
Bodies are read from the ASGI `receive` channel, so the write paths served without the framework
(api.app.RegistryApp) read them the same way as the routes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import Receive, Scope

from api.errors import too_large
from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.schema import MAX_BATCH_EVENTS

MAX_EVENT_BYTES = 1 << 20              # one signed event (and the eligibility request)
MAX_EVENT_BATCH_BYTES = 64 << 20       # up to 1,000 signed events
MAX_ACTIVITY_UPLOAD_BYTES = 64 << 20   # an activity.batch event and its records as JSON Lines
_PARSE_INLINE_BYTES = 64 << 10         # larger bodies are parsed off the event loop


async def read_body(scope: Scope, receive: Receive, limit_bytes: int) -> bytes:
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit_bytes:
            raise too_large(limit_bytes)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ConnectionAbortedError("the client went away before its request was read")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise too_large(limit_bytes)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def read_json(scope: Scope, receive: Receive, limit_bytes: int) -> Any:
    data = await read_body(scope, receive, limit_bytes)
    if len(data) > _PARSE_INLINE_BYTES:
        return await asyncio.to_thread(parse_strict, data)
    return parse_strict(data)


def event_batch(document: Any) -> list[Any]:
    """The events of {"events": [...]} (1 to MAX_BATCH_EVENTS); each is judged on its own later."""
    if not isinstance(document, dict) or set(document) != {"events"} or not isinstance(document["events"], list):
        raise Rejected("SCHEMA", 'a batch is {"events": [SIGNED_EVENT, ...]} and nothing else')
    if not 1 <= len(document["events"]) <= MAX_BATCH_EVENTS:
        raise Rejected("SCHEMA", f"a batch holds 1 to {MAX_BATCH_EVENTS} events, got {len(document['events'])}")
    return document["events"]


def activity_upload(data: bytes) -> tuple[Any, list[Any]]:
    """JSON Lines: line 1 the signed activity.batch event, then one activity record per line.

    A line that is not strict JSON is SCHEMA on line 1 and BATCH on a record line (spec section 9:
    "an activity file that ... holds a malformed record").
    """
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the final newline ends the last line
    if not lines:
        raise Rejected("SCHEMA", "empty upload: line 1 must be the signed activity.batch event")
    event = parse_strict(lines[0])
    if not isinstance(event, dict) or event.get("type") != "activity.batch":
        raise Rejected("SCHEMA", "line 1 must be a signed event of type activity.batch")
    records = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            records.append(parse_strict(line))
        except Rejected as rejection:
            raise Rejected("BATCH", f"line {number} (record {number - 2}): {rejection.message}") from None
    return event, records


async def read_activity_upload(scope: Scope, receive: Receive) -> tuple[Any, list[Any]]:
    data = await read_body(scope, receive, MAX_ACTIVITY_UPLOAD_BYTES)
    if len(data) > _PARSE_INLINE_BYTES:
        return await asyncio.to_thread(activity_upload, data)
    return activity_upload(data)
