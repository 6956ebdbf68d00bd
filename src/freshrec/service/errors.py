"""Every error leaves as JSON with a clear message; nothing leaks a traceback."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from freshrec.errors import StoreUnavailable, UnknownItem
from freshrec.ingest.batches import BadBatch

log = logging.getLogger("freshrec")
STORE_RETRY_AFTER_S = 5
"""What a 503 from a failing store asks clients to wait: a full or read-only disk is
fixed by a person, so retrying sooner would only add load to a service in trouble."""


class ApiError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(status: int, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status,
                        headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error_response(error.status, error.message, error.headers)

    @app.exception_handler(BadBatch)
    async def bad_batch(_: Request, error: BadBatch) -> JSONResponse:
        return error_response(error.status, str(error))

    @app.exception_handler(UnknownItem)
    async def unknown_item(_: Request, error: UnknownItem) -> JSONResponse:
        return error_response(404, str(error))

    @app.exception_handler(StoreUnavailable)
    async def store_down(_: Request, error: StoreUnavailable) -> JSONResponse:
        log.error("store unavailable: %s", error)
        return error_response(503, "storage is unavailable; the request was not stored, "
                                   "retry later",
                              headers={"Retry-After": str(STORE_RETRY_AFTER_S)})

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for issue in error.errors():
            kind = issue.get("type")
            if kind == "json_invalid":  # the same answer as the ingest routes give
                detail = (issue.get("ctx") or {}).get("error", "")
                return error_response(400, f"malformed JSON: {detail}".rstrip(": "))
            where = ".".join(str(part) for part in issue.get("loc", ()) if part != "body")
            if where:
                problems.append(f"{where}: {issue.get('msg', 'invalid')}")
            elif kind == "missing":  # also as the ingest routes answer it
                return error_response(400, "the request body is empty; send a JSON object")
            else:
                problems.append("the request body must be a JSON object "
                                "(sent with 'Content-Type: application/json')")
        return error_response(422, "; ".join(problems) or "invalid request")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, error: HTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request failed"
        if error.status_code == 404 and message == "Not Found":
            message = "no such route; see /docs for the API"
        if error.status_code == 405:
            message = "method not allowed on this route; see /docs for the API"
        return error_response(error.status_code, message, getattr(error, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal error; it has been logged")
