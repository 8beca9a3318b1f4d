"""Serve a synchronous WSGI application (Radicale) from aiohttp.

Each request runs in a worker thread so the event loop keeps serving other
requests (feeds, pages, health checks) while CalDAV work is under way.  An
answer the application returns as a list (Radicale's, built whole) is sent
as it is, never joined into a copy; one it returns as an iterator is sent a
piece at a time as the worker thread makes it (chunked), so that a large
listing is never held whole.  Bodies
over the configured size are refused with 413 before they are read, and a
guard (the authentication gate) may answer a request before it takes a thread.  After a
request the allocator may hand what it freed back to the system (see
``calserver.memory``).
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from calserver.memory import allocator

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Answers a request itself (returns the response) or lets it through (None).
Guard = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


class WSGIBridge:
    def __init__(
        self,
        app: WSGIApp,
        *,
        script_name: str,
        max_body: int,
        threads: int,
        guard: Guard | None = None,
    ) -> None:
        self._app = app
        self._guard = guard
        self._script_name = script_name.rstrip("/")
        self._max_body = max_body
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="caldav")

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _environ(self, request: web.Request, body: bytes) -> dict[str, Any]:
        path = request.path
        path_info = path[len(self._script_name) :] if path.startswith(self._script_name) else path
        host, port = (request.transport.get_extra_info("sockname") or ("", 0))[:2]
        peer = request.transport.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self._script_name,
            "PATH_INFO": path_info,
            "QUERY_STRING": request.query_string,
            "SERVER_NAME": str(host),
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
            "REMOTE_ADDR": str(peer[0]),
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.scheme,
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        if request.content_type:
            environ["CONTENT_TYPE"] = request.headers.get("Content-Type", "")
        for name, value in request.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                continue
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call(
        self, environ: dict[str, Any]
    ) -> tuple[int, list[tuple[str, str]], list[bytes] | Iterator[bytes]]:
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            started[:] = [status, headers]

        chunks = self._app(environ, start_response)
        status, headers = started
        if isinstance(chunks, list):
            allocator.trim_if_grown()  # what the request built is freed by now
            return int(status.split(" ", 1)[0]), headers, chunks
        return int(status.split(" ", 1)[0]), headers, iter(chunks)

    def _next(self, chunks: Iterator[bytes]) -> bytes | None:
        """The answer's next piece (None at its end), made in a worker thread."""
        piece = next(chunks, None)
        if piece is None:
            allocator.trim_if_grown()
        return piece

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_length is not None and request.content_length > self._max_body:
            raise web.HTTPRequestEntityTooLarge(
                max_size=self._max_body,
                actual_size=request.content_length,
                text=f"The request body is larger than the limit of {self._max_body} bytes.\n",
            )
        if self._guard is not None:
            answer = await self._guard(request)
            if answer is not None:
                return answer
        body = await request.read()
        environ = self._environ(request, body)
        del body
        loop = asyncio.get_running_loop()
        status, headers, chunks = await loop.run_in_executor(self._executor, self._call, environ)
        if isinstance(chunks, list):
            # One answer built whole (most of Radicale's): sent as it is, not copied.
            response = web.Response(
                status=status, body=chunks[0] if len(chunks) == 1 else b"".join(chunks)
            )
            for name, value in headers:
                if name.lower() != "content-length":
                    response.headers.add(name, value)
            return response
        # An answer made in pieces: each is sent as it comes, chunked.
        streamed = web.StreamResponse(status=status)
        for name, value in headers:
            if name.lower() != "content-length":
                streamed.headers.add(name, value)
        try:
            await streamed.prepare(request)
            while (
                piece := await loop.run_in_executor(self._executor, self._next, chunks)
            ) is not None:
                await streamed.write(piece)
            await streamed.write_eof()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return streamed
