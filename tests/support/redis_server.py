"""A real ``redis-server`` for the Redis limiter tests: started on a unix socket, stopped, killed, frozen, restarted.

Without the binary the tests skip, except under CI (the ``CI`` environment variable set), where they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest
import redis

__all__ = ["RedisCluster", "RedisSentinel", "RedisServer", "redis_server_binary"]

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


def _free_port() -> int:
    """A TCP port free on loopback whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisCluster:
    """Three ``redis-server --cluster-enabled yes`` masters on loopback TCP, joined by ``redis-cli``."""

    def __init__(self, binary: str, masters: int = 3) -> None:
        cli = shutil.which("redis-cli")
        if cli is None:
            reason = "redis-cli is not installed (apt-get install redis-tools)"
            if os.environ.get("CI"):
                pytest.fail(f"{reason}; under CI the Redis tests are mandatory", pytrace=False)
            pytest.skip(reason)
        self._cli = cli
        self._binary = binary
        self._dir = Path(tempfile.mkdtemp(prefix="ap-cluster-"))
        self.ports = [_free_port() for _ in range(masters)]
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def _start_node(self, port: int) -> None:
        self._processes[port] = subprocess.Popen(  # noqa: S603 (our own arguments, no shell)
            [
                self._binary, "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", "1000", "--save", "", "--appendonly", "no",
                "--dir", str(self._dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _wait(self, check: Callable[[redis.Redis], bool], what: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                if all(check(redis.Redis(port=p)) for p in self.ports if p in self._processes):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"the cluster did not {what}")

    def start(self) -> None:
        for port in self.ports:
            self._start_node(port)
        self._wait(lambda client: bool(client.ping()), "start")
        subprocess.run(  # noqa: S603 (our own arguments)
            [self._cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
             "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        self._wait(
            lambda client: client.cluster("INFO").get("cluster_state") in ("ok", b"ok"),
            "reach cluster_state:ok",
        )

    def port_of(self, key: str) -> int:
        """The port of the master that holds ``key``'s slot."""
        with redis.Redis(port=self.ports[0]) as client:
            slot = int(client.cluster("KEYSLOT", key))
            for start, end, master, *_ in client.cluster("SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        raise RuntimeError(f"no master holds slot {slot}")

    def kill(self, port: int) -> None:
        process = self._processes.pop(port)
        process.kill()
        process.wait()

    def close(self) -> None:
        for port in list(self._processes):
            self.kill(port)
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


class RedisSentinel:
    """A primary, one replica and three sentinels on loopback TCP (``redis-server --sentinel``)."""

    SERVICE = "mymaster"

    def __init__(self, binary: str) -> None:
        self._binary = binary
        self._dir = Path(tempfile.mkdtemp(prefix="ap-sentinel-"))
        self.primary, self.replica = _free_port(), _free_port()
        self.sentinels = [_free_port() for _ in range(3)]
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.SERVICE}"

    def _spawn(self, *args: str) -> None:
        self._processes.append(
            subprocess.Popen(  # noqa: S603 (our own arguments, no shell)
                [self._binary, *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )

    def _wait(self, check: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        self.close()
        raise RuntimeError(f"Sentinel did not {what}")

    def start(self) -> None:
        common = (
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
        )
        self._spawn("--port", str(self.primary), *common)
        self._spawn(
            "--port", str(self.replica), "--replicaof", "127.0.0.1", str(self.primary), *common
        )
        for port in self.sentinels:
            config = self._dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self._dir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary} 2\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n",
                encoding="utf-8",
            )
            self._spawn(str(config), "--sentinel")
        self._wait(self._ready, "see the replica and every sentinel")

    def _ready(self) -> bool:
        for port in self.sentinels:
            with redis.Redis(port=port) as sentinel:
                if len(sentinel.sentinel_slaves(self.SERVICE)) != 1:
                    return False
                if len(sentinel.sentinel_sentinels(self.SERVICE)) != len(self.sentinels) - 1:
                    return False
        with redis.Redis(port=self.replica) as replica:
            return bool(replica.info("replication").get("master_link_status") == "up")

    def primary_port(self) -> int:
        with redis.Redis(port=self.sentinels[0]) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(self.SERVICE)
        return int(port)

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: the replica becomes the primary (returns once the sentinels say so)."""
        before = self.primary_port()
        with redis.Redis(port=self.sentinels[0]) as sentinel:
            sentinel.execute_command("SENTINEL FAILOVER", self.SERVICE)
        self._wait(lambda: self.primary_port() != before, "fail over")

    def close(self) -> None:
        for process in self._processes:
            process.kill()
            process.wait()
        self._processes.clear()
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
