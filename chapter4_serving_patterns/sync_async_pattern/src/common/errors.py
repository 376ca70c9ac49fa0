"""One error envelope for every failure (SPEC 0.6), mapped in one place.

    {"error": "<message for a human>", "code": "<snake_case>", "request_id": "<id>",
     "details": [{"loc": [...], "msg": "..."}]}        # details: validation errors only

`install_error_handlers(app)` maps: `ApiError` (raised by the pattern's code) as given;
request validation and malformed JSON → 422 `invalid_input`; a JSON route that receives another
Content-Type → 415 `unsupported_media_type`; Starlette/FastAPI HTTP errors (unknown route 404,
405, 413, ...) to their code; a client gone mid-body → 400; anything unexpected → 500
`internal_error`, as JSON, without the exception text (the traceback goes to the log, never to
the client). `error_responses(...)` documents the envelope in the OpenAPI document.
"""

from __future__ import annotations

import email.message
import re
import uuid
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.params import Form
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from src.common.request_id import REQUEST_ID_HEADER, current_request_id

# Codes used across the repository (SPEC 0.6) for the statuses an HTTPException may carry;
# any other status gets its reason phrase in snake_case.
CODE_BY_STATUS: dict[int, str] = {
    400: "invalid_input",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    503: "dependency_unavailable",
    504: "upstream_timeout",
}


# FastAPI answers 400 with this detail when a JSON body is not valid UTF-8; for the client it is
# an invalid body like any other (422, as malformed JSON is).
UNPARSABLE_BODY_DETAIL = "There was an error parsing the body"


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """The envelope, for the OpenAPI document (`responses=error_responses(404, 409)`)."""

    error: str
    code: str
    request_id: str
    details: list[ErrorDetail] | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries documenting the envelope for these statuses."""
    return {
        status: {"model": ErrorBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


class ApiError(Exception):
    """An error the client should see as it is: status, snake_case code and message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = [dict(item) for item in details] if details is not None else None
        self.headers = dict(headers) if headers is not None else None


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The envelope as a response, carrying the current request id (or a fresh one)."""
    request_id = current_request_id() or uuid.uuid4().hex
    body: dict[str, Any] = {"error": message, "code": code, "request_id": request_id}
    if details is not None:
        body["details"] = [dict(item) for item in details]
    all_headers = {**(headers or {}), REQUEST_ID_HEADER: request_id}
    return JSONResponse(body, status_code=status, headers=all_headers)


def code_for_status(status: int) -> str:
    if status in CODE_BY_STATUS:
        return CODE_BY_STATUS[status]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        return "internal_error" if status >= 500 else "invalid_input"
    return re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """`{loc, msg}` per error; the offending input is left out (it may be large or secret)."""
    details = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "json_invalid":
            reason = error.get("ctx", {}).get("error")
            message = f"malformed JSON: {reason}" if reason else "malformed JSON"
        details.append({"loc": loc, "msg": message})
    return details


def _media_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    parsed = email.message.Message()
    parsed["content-type"] = content_type
    return parsed.get_content_type()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _wrong_media_type(request: Request, errors: Sequence[Any]) -> str | None:
    """The Content-Type to refuse when a JSON-body route got something that is not JSON.

    FastAPI parses a body as JSON only under a JSON Content-Type, so any other type ends as a
    validation error on the body; the client's mistake is the media type, not a field.
    """
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None or isinstance(body_field.field_info, Form):
        return None
    media_type = _media_type(request.headers.get("content-type"))
    if media_type is not None and _is_json(media_type):
        return None
    body_errors = [error for error in errors if tuple(error.get("loc", ()))[:1] == ("body",)]
    if media_type is None and all(error.get("type") == "missing" for error in body_errors):
        return None  # no body at all and no type: a plain missing-body validation error
    return media_type or "no Content-Type"


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    wrong_type = _wrong_media_type(request, errors)
    if wrong_type is not None:
        return error_response(
            415, "unsupported_media_type", f"expected application/json, got {wrong_type}"
        )
    details = validation_details(errors)
    return error_response(422, "invalid_input", _summary(errors, details), details)


def _summary(errors: Sequence[Any], details: list[dict[str, Any]]) -> str:
    if not details:
        return "invalid input"
    if errors[0].get("type") == "json_invalid":
        return f"body is not valid JSON: {details[0]['msg'].removeprefix('malformed JSON: ')}"
    where = ".".join(str(part) for part in details[0]["loc"])
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"invalid input: {where}: {details[0]['msg']}{more}"


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status == 400 and exc.detail == UNPARSABLE_BODY_DETAIL:
        return error_response(422, "invalid_input", "body is not valid JSON: not UTF-8 text")
    if status == 404 and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        message = f"no route for {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} not allowed on {request.url.path}"
    else:
        message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(status, code_for_status(status), message, headers=exc.headers)


async def _client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    # Nobody reads this answer; it only keeps an aborted upload out of the error log.
    return error_response(400, "invalid_input", "client disconnected before the body was complete")


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette's ServerErrorMiddleware calls this and re-raises, so the server logs the
    # traceback once (with the request id); the client only learns that it failed.
    return error_response(500, "internal_error", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(Exception, _unexpected_error)
