"""Domain exceptions of the serving side, and their one translation into HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class ServingError(Exception):
    status_code = 400
    code = "bad_request"

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


def _error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServingError)
    async def _serving_error(_request: Request, exc: ServingError) -> JSONResponse:
        return JSONResponse(_error_body(exc.code, exc.message, **exc.details),
                            status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Name each bad field the way a client wrote it: "query.limit", "body.action".
        fields = {".".join(str(part) for part in err["loc"]): err["msg"]
                  for err in exc.errors()}
        names = ", ".join(fields) or "request"
        return JSONResponse(_error_body("invalid_request", f"invalid {names}", fields=fields),
                            status_code=422)
