"""Domain exceptions of the serving side, and their one translation into HTTP responses.

Every error, whatever raised it (a route, the API-key check, request validation, an unknown
path, a bug), answers with one shape:

    {"error": {"code": "unknown_customer", "message": "no shopper 'C9' in this store", ...}}

`code` is stable for programs; `message` is plain words for people; anything else is detail
(`fields` of an invalid request, `position` in malformed JSON, ...).
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

# FastAPI's error type for a body that does not parse as JSON.
_JSON_INVALID = "json_invalid"
# Codes for the HTTP errors Starlette raises itself (an unknown path, a wrong method).
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class ServingError(Exception):
    status_code = 400
    code = "bad_request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class UnknownCustomer(ServingError):
    status_code = 404
    code = "unknown_customer"


class UnknownProduct(ServingError):
    status_code = 404
    code = "unknown_product"


class ConsentRequired(ServingError):
    status_code = 403
    code = "consent_required"


class NotReady(ServingError):
    status_code = 503
    code = "not_ready"


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def _malformed_json(exc: RequestValidationError) -> JSONResponse | None:
    """A body that is not JSON at all, said as such (FastAPI reports it as a field named
    after the character position, `body.17`)."""
    broken = next((err for err in exc.errors() if err.get("type") == _JSON_INVALID), None)
    if broken is None:
        return None
    reason = (broken.get("ctx") or {}).get("error", "not JSON")
    loc = broken.get("loc", ())
    position = loc[-1] if loc and isinstance(loc[-1], int) else None
    where = ""
    if position is not None:
        where = f" at character {position}"
        if isinstance(exc.body, str):
            line = exc.body.count("\n", 0, position) + 1
            column = position - (exc.body.rfind("\n", 0, position) + 1) + 1
            where = f" at line {line}, column {column}"
    return JSONResponse(error_body("malformed_json",
                                   f"the request body is not valid JSON: {reason}{where}",
                                   position=position), status_code=400)


def _http_code(status: int) -> str:
    if status in _HTTP_CODES:
        return _HTTP_CODES[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return f"http_{status}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def _serving_error(_request: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, **exc.details),
                            status_code=exc.status_code, headers=exc.headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = _malformed_json(exc)
        if malformed is not None:
            return malformed
        # Name each bad field the way a client wrote it: "query.limit", "body.action".
        fields = {".".join(str(part) for part in err["loc"]): err["msg"]
                  for err in exc.errors()}
        names = ", ".join(fields) or "request"
        return JSONResponse(error_body("invalid_request", f"invalid {names}", fields=fields),
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse(error_body(_http_code(status), message), status_code=status,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Starlette logs the exception too and re-raises it after this answer is sent.
        return JSONResponse(error_body("internal_error", "the edge agent hit an unexpected "
                                       "error; it has been logged"), status_code=500)
