"""A TCP delay line: this kernel has no `tc netem`, so latency between the workers and their
services is a proxy that holds every chunk for half the round trip in each direction.

    proxy = DelayProxy("127.0.0.1", 6379, rtt=0.004)   # starts a thread
    url = f"redis://127.0.0.1:{proxy.port}/4"
    proxy.rtt = 0.0                                      # changes apply to open connections
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class DelayProxy:
    def __init__(self, host: str, port: int, rtt: float = 0.0) -> None:
        self.host, self.target, self.rtt = host, port, rtt
        self.port = 0
        self.sent = 0  # chunks from the clients to the service (about one per request)
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._serve, args=(ready,), daemon=True,
                         name=f"delay-{port}").start()
        ready.wait(10)

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._connect, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _connect(self, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer, True),
                             self._pipe(up_reader, writer, False))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    upstream: bool) -> None:
        """Copy one direction, each chunk delivered half a round trip after it arrived, in
        order (a queue per direction: a later chunk never overtakes an earlier one)."""
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await queue.get()
                if not chunk:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(chunk)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while chunk := await reader.read(65536):
                self.sent += upstream
                queue.put_nowait((time.monotonic() + self.rtt / 2, chunk))
        except OSError:
            pass
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(OSError, asyncio.CancelledError):
                await sender
            writer.close()
