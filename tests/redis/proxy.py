"""A TCP proxy on loopback, in the test's event loop, that delays or cuts the traffic to a real Redis.

Each direction of each connection forwards what it reads ``delay`` seconds later, in order (a link that is
``delay`` away, not a slow server). `cut` drops every connection and refuses new ones' traffic: the process
behind it loses Redis while the others, connected directly, keep it.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

__all__ = ["DelayProxy"]


class DelayProxy:
    """Forward ``127.0.0.1:<port>`` to a Redis unix socket, ``delay`` seconds late each way."""

    def __init__(self, socket: Path, delay: float) -> None:
        self._socket = socket
        self.delay = delay
        self.cut_off = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.cut_off:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_unix_connection(str(self._socket))
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                if self.cut_off:
                    break  # a cut link delivers nothing more
                sink.write(data)
                with contextlib.suppress(OSError):
                    await sink.drain()
            sink.close()

        delivery = asyncio.create_task(deliver())
        try:
            while data := await source.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        except OSError:
            pass
        queue.put_nowait((loop.time(), b""))
        await delivery

    def cut(self) -> None:
        """Drop every connection (unanswered) and every new one until `restore`."""
        self.cut_off = True
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.cut_off = False

    async def aclose(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
