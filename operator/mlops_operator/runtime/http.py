"""The HTTP plumbing of the runtime's ASGI app: the ASGI types, a response, an error with its
status, and the two error shapes (MLflow's scoring server's and the Open Inference Protocol's)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from mlops_operator.contract import ROUTE_INVOCATIONS
from mlops_operator.runtime import codec

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Handler = Callable[[Scope, Receive], Awaitable["Response"]]

JSON = b"application/json"


@dataclass
class Response:
    status: int
    body: bytes
    content_type: bytes = JSON
    rows: int = 0
    # a prediction the shadow may copy: (path on the candidate, content type, request body)
    copy: tuple[str, str, bytes] | None = None


class HttpError(Exception):
    """An error response with its status; the message is sent to the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def rows_of(data: Any) -> int:
    try:
        return len(data)
    except TypeError:
        return 1


def header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


def error(status: int, message: str, route: str) -> Response:
    if route == ROUTE_INVOCATIONS:
        # MLflow's scoring server error shape, so its clients parse it as before
        if status == 503:
            code = "TEMPORARILY_UNAVAILABLE"
        else:
            code = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
        body = {"error_code": code, "message": message}
    else:
        body = {"error": message}  # Open Inference Protocol error shape
    return Response(status, codec.encode_json(body))
