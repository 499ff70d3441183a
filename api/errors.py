"""Every refusal the API gives: an HTTP status and a JSON body {"code", "message"}.

Codes are the spec's (section 9). The status depends on the code alone, so a client can act on
either: 422 for what the request says by itself, 401/403 for who signed it, 409 for what clashes
with the registry's state. One code is the API's own: UNAVAILABLE (503), nothing was written,
try again. Two are the front's limits (api/limits.py): TIMEOUT (408), the body came too slowly;
RATE_LIMITED (429), too much at once: wait as long as Retry-After says.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response  # fastapi.Response itself: spawned processes skip fastapi

from ledger.errors import CODES, Rejected
from service.refusals import Cause, Refusal

UNAVAILABLE = "UNAVAILABLE"
TIMEOUT = "TIMEOUT"
RATE_LIMITED = "RATE_LIMITED"
API_CODES = (*CODES, UNAVAILABLE, TIMEOUT, RATE_LIMITED)

STATUS_BY_CODE: dict[str, int] = {code: 409 for code in CODES} | {
    "ENCODING": 422, "SCHEMA": 422, "BATCH": 422,
    "SIGNATURE": 401, "KEY_UNKNOWN": 401, "KEY_REVOKED": 401,
    "UNAUTHORIZED": 403,
    UNAVAILABLE: 503, TIMEOUT: 408, RATE_LIMITED: 429,
}


class ApiError(Exception):
    """A refusal with a status that is not the code's usual one (413, 404, 503), or with a wait."""

    def __init__(self, status: int, code: str, message: str, *, retry_after_s: int | None = None):
        assert code in API_CODES, code
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return answer_headers(self.status, self.retry_after_s)


def not_found(what: str) -> ApiError:
    return ApiError(404, "UNKNOWN_REF", f"{what} does not exist")


def refusal_error(refused: Refusal) -> ApiError:
    """A refusal of service.refusals as an answer: 404 when it names what the log does not hold,
    409 when what the log holds does not fit it, else the code's usual status."""
    assert refused.code is not None, refused  # this machine's failures are faults, not answers
    status = {Cause.ABSENT: 404, Cause.LOGGED: 409}.get(refused.cause) or STATUS_BY_CODE[refused.code]
    return ApiError(status, refused.code, refused.message)


def too_large(limit_bytes: int) -> ApiError:
    return ApiError(413, "SCHEMA", f"request body larger than {limit_bytes} bytes")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(value), status_code=status, media_type="application/json", headers=headers)


def answer_headers(status: int, retry_after_s: int | None = None) -> dict[str, str]:
    """The headers a refusal carries besides its body: when to retry (503: nothing was written;
    429: the wait the limit computed), and for 408 that the connection closes (its body is unread)."""
    if status in (429, 503):
        return {"Retry-After": str(retry_after_s or 1)}
    if status == 408:
        return {"Connection": "close"}
    return {}


def problem(status: int, code: str, message: str, retry_after_s: int | None = None) -> Response:
    return json_response({"code": code, "message": message}, status, answer_headers(status, retry_after_s))


def rejected_problem(rejection: Rejected) -> dict[str, Any]:
    return {"code": rejection.code, "message": rejection.message}


def rejected_response(rejection: Rejected) -> Response:
    return problem(STATUS_BY_CODE[rejection.code], rejection.code, rejection.message)
