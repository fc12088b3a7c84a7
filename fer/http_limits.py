"""A request-body limit for the web server, as plain ASGI middleware (no web framework imported).

Without it a client can send a 30 MB JSON body that the server parses in full (about 1.5 GB of
memory); a few at once take the app away from everyone. Bodies are refused with 413 as soon as the
declared ``Content-Length``, or the bytes actually received, pass the limit of their route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["BodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class BodyLimit:
    """Refuse HTTP request bodies over a limit, with a larger one for file-upload routes.

    Args:
        app: the ASGI app to protect.
        max_bytes: limit for every route but uploads (JSON event payloads, API calls).
        upload_max_bytes: limit for paths containing ``upload_path`` (multipart file uploads).
        upload_path: the path fragment of the upload route.

    Example:
        >>> from starlette.middleware import Middleware  # doctest: +SKIP
        >>> Middleware(BodyLimit, max_bytes=4 << 20, upload_max_bytes=200 << 20)  # doctest: +SKIP
    """

    def __init__(self, app: Callable, max_bytes: int, upload_max_bytes: int, upload_path: str = "/upload") -> None:
        if max_bytes <= 0 or upload_max_bytes <= 0:
            raise ValueError(f"limits must be positive, got {max_bytes} and {upload_max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = upload_max_bytes
        self.upload_path = upload_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_max_bytes if self.upload_path in scope.get("path", "") else self.max_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
            return
        received = 0
        started = refused = False

        async def counting_receive() -> Message:
            # A body without a declared length (chunked) is counted as it arrives; past the limit
            # the client gets 413 and the app sees the client go away, so it stops reading.
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the client already has its 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, tracking_send)


async def _refuse(send: Send, limit: int) -> None:
    body = f'{{"error": "request body larger than {limit // (1 << 20)} MB"}}'.encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
