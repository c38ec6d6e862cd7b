"""Request bodies bounded while they are read, before JSON parsing and before the API key is
checked: FastAPI reads the whole body before it runs a handler's dependencies, so without
this a 200 MB body with no key took ~600 MB of memory to earn its 401.

A declared `Content-Length` over the limit is refused at once, unread; a body without one
(chunked) is counted as it arrives and refused the moment it passes the limit. Either way
the answer is 413 in the API's one error shape, and the process holds at most the limit.
A body must also arrive whole within `timeout_s` of the app's first read, or the answer is
408: sent a byte at a time, it would otherwise hold a connection and a handler for ever
(the connection guard bounds only the request head).
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_agent.api.errors import error_body


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        received = 0
        started = False  # the app began its response
        refused = False  # we answered ourselves: what the app sends after is dropped
        deadline: float | None = None  # set at the app's first read
        whole = False  # the body has arrived: later reads (disconnect watch) are not timed

        async def counting_receive() -> Message:
            nonlocal received, refused, deadline, whole
            if whole:
                return await receive()
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.timeout_s
            try:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0))
            except TimeoutError:
                if not started and not refused:
                    refused = True
                    await self._too_slow(send)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                whole = True
            if message["type"] == "http.request" and not refused:
                received += len(message.get("body", b""))
                if received > self.max_bytes and not started:
                    # Answer now, and tell the app the client is gone, so it stops reading.
                    # (Raising here would become FastAPI's 400 "error parsing the body".)
                    refused = True
                    await self._refuse(send, None)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, send: Send, declared: int | None) -> None:
        size = f"{declared} bytes" if declared is not None else "a body"
        body = orjson.dumps(error_body(
            "payload_too_large", f"{size} is more than the {self.max_bytes} bytes a request"
            " may carry", field="body", max_bytes=self.max_bytes))
        await _answer(send, 413, body)


    async def _too_slow(self, send: Send) -> None:
        body = orjson.dumps(error_body(
            "request_timeout", f"the body did not arrive within {self.timeout_s:g} s",
            field="body"))
        await _answer(send, 408, body)


async def _answer(send: Send, status: int, body: bytes) -> None:
    """A whole error answer, closing the connection (its body may be half read)."""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
