"""A real ``redis-server`` for the Redis limiter tests: started on a unix socket, stopped, killed, frozen, restarted.

Without the binary the tests skip, except under CI (the ``CI`` environment variable set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import redis

__all__ = ["RedisServer", "redis_server_binary"]

_START_TIMEOUT = 10.0


def redis_server_binary() -> str:
    """The path of ``redis-server``; skips the test without one (fails under CI)."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; under CI the Redis tests are mandatory", pytrace=False)
        pytest.skip(reason)
    return binary


class RedisServer:
    """One ``redis-server`` process without persistence, listening on a unix socket only.

    The socket lives in a short temporary directory (unix socket paths are limited to ~100 bytes) and keeps
    its path across `stop` and `start`, so clients reconnect to a restarted server.
    """

    def __init__(
        self, binary: str, *, args: Sequence[str] = (), password: str | None = None
    ) -> None:
        """``args`` are passed on to ``redis-server``; ``password`` is the default user's (to probe it)."""
        self._binary = binary
        self._args = tuple(args)
        self._password = password
        self._dir = Path(tempfile.mkdtemp(prefix="ap-redis-"))
        self.socket = self._dir / "redis.sock"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        if self._process is not None:
            raise RuntimeError("redis-server is already running")
        self._process = subprocess.Popen(  # noqa: S603 (our own arguments, no shell)
            [
                self._binary,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
                *self._args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            try:
                with redis.Redis(
                    unix_socket_path=str(self.socket), password=self._password
                ) as probe:
                    probe.ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.005)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        self.socket.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: no goodbye to clients; every key is lost (no persistence)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.socket.unlink(missing_ok=True)

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open, nothing is answered, nothing fails."""
        if self._process is None:
            raise RuntimeError("redis-server is not running")
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT a frozen server: it answers again, with every key it had."""
        if self._process is None:
            raise RuntimeError("redis-server is not running")
        self._process.send_signal(signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
