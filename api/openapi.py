"""What the routes add to the OpenAPI document: their refusals, JSON request bodies and answers.

The handlers read bodies and write answers themselves (api.bodies, api.errors), so FastAPI cannot
infer these; every route spells them out with these helpers.
"""

from __future__ import annotations

from typing import Any

_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def refused(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Refusals {code, message} with these statuses. Spelled out rather than `model`: a text/plain,
    CSV or tar route still refuses in JSON."""
    return {status: {"description": "refused: {code, message}", "content": _PROBLEM} for status in statuses}


def json_body(*schemas: dict[str, Any] | str) -> dict[str, Any]:
    """A required JSON request body (openapi_extra): a schema, or the name of a component schema;
    several are oneOf."""
    shown = [{"$ref": f"#/components/schemas/{s}"} if isinstance(s, str) else s for s in schemas]
    schema = shown[0] if len(shown) == 1 else {"oneOf": shown}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def ok(model: type, status: int = 200, **more: Any) -> dict[int | str, dict[str, Any]]:
    """An answer of this model with this status, and any more answers."""
    return {status: {"model": model}, **more}
