"""Request bodies: read with a size limit, parsed strictly (ledger.canonical.parse_strict).

FastAPI's own JSON parsing accepts duplicate keys and floats, so no route lets it parse a body.
Bodies are read from the ASGI `receive` channel, so the write paths served without the framework
(api.app.RegistryApp) read them the same way as the routes.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from starlette.types import Receive, Scope

from api.errors import ApiError, too_large
from ledger.canonical import parse_strict
from ledger.errors import Rejected
from ledger.events.activities import UnreadableRecord
from ledger.schema import MAX_BATCH_EVENTS

MAX_EVENT_BYTES = 1 << 20              # one signed event (and the eligibility request)
MAX_EVENT_BATCH_BYTES = 64 << 20       # up to 1,000 signed events
MAX_ACTIVITY_UPLOAD_BYTES = 64 << 20   # an activity.batch event and its records as JSON Lines
MAX_UPLOAD_EVENT_BYTES = MAX_EVENT_BYTES  # its line 1
_PARSE_INLINE_BYTES = 64 << 10         # larger bodies are parsed off the event loop


JSON_TYPES = frozenset(("application/json",))
JSON_LINES_TYPES = frozenset(("application/x-ndjson", "application/jsonl"))
# The media types each POST of the API takes (any other path under /v1/: JSON). A request may
# declare none; one declaring another is refused before its body is read: a browser sends
# text/plain or a form across origins without asking the server first (no CORS preflight), so
# a page elsewhere cannot make its visitors' browsers post to the API.
MEDIA_TYPES_BY_PATH = {"/v1/activity-batches": JSON_LINES_TYPES, "/v1/ingestions": JSON_LINES_TYPES | {"text/csv"}}


def media_type_refusal(scope: Scope) -> ApiError | None:
    """415 for a POST under /v1/ whose Content-Type is not one its path takes, else None."""
    if scope["method"] != "POST" or not scope["path"].startswith("/v1/"):
        return None
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type = value.split(b";", 1)[0].strip().lower().decode("latin-1")
            accepted = MEDIA_TYPES_BY_PATH.get(scope["path"], JSON_TYPES)
            # An empty value declares nothing (and is no type a browser sends without a preflight).
            if media_type and media_type not in accepted:
                return ApiError(415, "SCHEMA", f"{scope['path']} takes {' or '.join(sorted(accepted))}, "
                                               f"not {media_type[:100]!r} (or send no Content-Type)")
    return None


def declared_length(scope: Scope) -> int | None:
    """The body's size as its Content-Length says (None without one, or a malformed one)."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit_bytes: int) -> bytes:
    declared = declared_length(scope)
    if declared is not None and declared > limit_bytes:
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


async def parse_json(data: bytes, *, check_strings: bool = True) -> Any:
    """parse_strict, off the event loop for a large body."""
    if len(data) > _PARSE_INLINE_BYTES:
        return await asyncio.to_thread(functools.partial(parse_strict, data, check_strings=check_strings))
    return parse_strict(data, check_strings=check_strings)


async def read_json(scope: Scope, receive: Receive, limit_bytes: int, *, check_strings: bool = True) -> Any:
    return await parse_json(await read_body(scope, receive, limit_bytes), check_strings=check_strings)


def event_batch(document: Any) -> list[Any]:
    """The events of {"events": [...]} (1 to MAX_BATCH_EVENTS); each is judged on its own later."""
    if not isinstance(document, dict) or set(document) != {"events"} or not isinstance(document["events"], list):
        raise Rejected("SCHEMA", 'a batch is {"events": [SIGNED_EVENT, ...]} and nothing else')
    if not 1 <= len(document["events"]) <= MAX_BATCH_EVENTS:
        raise Rejected("SCHEMA", f"a batch holds 1 to {MAX_BATCH_EVENTS} events, got {len(document['events'])}")
    return document["events"]


def upload_event(data: bytes) -> tuple[Any, int]:
    """Line 1 of an activity upload (JSON Lines): the signed activity.batch event, and where the
    records start. Only this line is parsed, so that the signer can be checked before the records."""
    if not data:
        raise Rejected("SCHEMA", "empty upload: line 1 must be the signed activity.batch event")
    end = data.find(b"\n", 0, MAX_UPLOAD_EVENT_BYTES + 1)
    if end < 0 and len(data) > MAX_UPLOAD_EVENT_BYTES:
        raise Rejected("SCHEMA", f"line 1 (the event) is longer than {MAX_UPLOAD_EVENT_BYTES} bytes")
    first, records_at = (data, len(data)) if end < 0 else (data[:end], end + 1)
    event = parse_strict(first)
    if not isinstance(event, dict) or event.get("type") != "activity.batch":
        raise Rejected("SCHEMA", "line 1 must be a signed event of type activity.batch")
    return event, records_at


def upload_records(data: bytes, records_at: int) -> list[Any]:
    """The records of an activity upload, one per line after the event's. A line that is not
    strict JSON is BATCH (spec section 9: "an activity file that ... holds a malformed record"),
    judged by the writer in its turn: after the event's own rules (UNAUTHORIZED, REPLAY, ...) and
    the other records' DUPLICATE_ID, as spec section 7.3 orders them."""
    lines = data[records_at:].split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # the final newline ends the last line
    records = []
    for number, line in enumerate(lines, start=2):
        try:
            records.append(parse_strict(line))
        except Rejected as rejection:
            records.append(UnreadableRecord(f"line {number}: {rejection.message}"))
    return records
