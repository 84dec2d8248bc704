"""The Redis limiter's cost: round trips to Redis per grant, and the latency it adds to each grant.

Round trips are read from Redis itself (``INFO commandstats``: calls of ``evalsha`` and ``eval``, after
``CONFIG RESETSTAT``), in four situations: an idle key (every call is due at once), one call at a time that
has to wait, a queue of calls in one process, and queues in four "processes" (four clients and limiters
sharing the key). Latency is measured on real time against the in-memory limiter with the same pacing:
the cost of one ``acquire()`` on an idle key, and the rate a queue of calls achieves against its pacing.

Without ``--url`` a temporary ``redis-server`` (no persistence) is started on a unix socket and a loopback
port, and both are measured. Run: ``nox -s bench -- redis`` or ``python -m bench redis [--grants 200]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import redis
import redis.asyncio as aioredis

from assetpay_async._limiting import LimiterKey, MemoryLimiter, RateLimiter
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.redis_limiter import RedisLimiter

from ._common import stamp

KEY = LimiterKey("bench", RouteGroup.CANCEL_ITEM)
PACED = Quota(501, 1.0)
"""With J = 0: one grant every 2 ms."""
OPEN = Quota(1_000_000, 1.0)
"""With J = 0: one grant every microsecond, never a wait, so ``acquire()`` costs only its own work."""


@contextlib.contextmanager
def temporary_server() -> Iterator[dict[str, str]]:
    """A ``redis-server`` on a unix socket and a free loopback port; yields ``{transport: url}``."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install it or pass --url")
    workdir = Path(tempfile.mkdtemp(prefix="ap-bench-"))
    sock = workdir / "redis.sock"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--unixsocket", str(sock)]
    args += ["--save", "", "--appendonly", "no", "--dir", str(workdir)]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    try:
        for _ in range(1000):
            try:
                with redis.Redis(unix_socket_path=str(sock)) as probe_client:
                    probe_client.ping()
                break
            except (redis.ConnectionError, FileNotFoundError):
                time.sleep(0.01)
        yield {"unix socket": f"unix://{sock}", "tcp loopback": f"redis://127.0.0.1:{port}"}
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(workdir, ignore_errors=True)


async def script_calls(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def round_trips(url: str, grants: int) -> dict[str, float]:
    """Script calls per grant in each situation."""
    results: dict[str, float] = {}

    async def count(
        name: str, limiters: int, run: Callable[[list[RedisLimiter]], Awaitable[None]]
    ) -> None:
        clients = [aioredis.Redis.from_url(url) for _ in range(limiters)]
        await clients[0].flushdb()
        limiters_ = [
            RedisLimiter(
                c, "bench", RouteGroup.CANCEL_ITEM, PACED, latency_margin=0.0, key_prefix=name
            )
            for c in clients
        ]
        await clients[0].config_resetstat()
        await run(limiters_)
        results[name] = await script_calls(clients[0]) / grants
        for limiter in limiters_:
            await limiter.aclose()
        for client in clients:
            await client.aclose()

    async def idle(limiters: list[RedisLimiter]) -> None:
        for _ in range(grants):
            await limiters[0].acquire()
            await asyncio.sleep(0.003)  # longer than one interval: the next call is due at once

    async def one_at_a_time(limiters: list[RedisLimiter]) -> None:
        for _ in range(grants):
            await limiters[0].acquire()

    async def queued(limiters: list[RedisLimiter]) -> None:
        share = grants // len(limiters)
        await asyncio.gather(*(lim.acquire() for lim in limiters for _ in range(share)))

    await count("idle key", 1, idle)
    await count("one call at a time, waiting", 1, one_at_a_time)
    await count("queue of calls, 1 process", 1, queued)
    await count("queues in 4 processes", 4, queued)
    return results


async def acquire_cost(limiter: RateLimiter, calls: int) -> list[float]:
    costs = []
    for _ in range(calls):
        start = time.perf_counter()
        await limiter.acquire()
        costs.append(time.perf_counter() - start)
    return costs


async def achieved(limiter: RateLimiter, grants: int, interval: float) -> str:
    """Grants per second of a queue of ``grants`` calls, as a share of one per ``interval``."""
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(grants)))
    return f"{(len(times) - 1) / (max(times) - min(times)) * interval:.1%}"


def us(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1e6
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1e6
    return f"{p50:.0f} / {p99:.0f}"


async def latencies(url: str, grants: int) -> dict[str, tuple[str, str]]:
    client = aioredis.Redis.from_url(url)
    await client.flushdb()
    open_redis = RedisLimiter(
        client, "bench", RouteGroup.CANCEL_ITEM, OPEN, latency_margin=0.0, key_prefix="cost"
    )
    paced_redis = RedisLimiter(
        client, "bench", RouteGroup.CANCEL_ITEM, PACED, latency_margin=0.0, key_prefix="late"
    )
    open_memory = MemoryLimiter(KEY, OPEN, latency_margin=0.0)
    paced_memory = MemoryLimiter(KEY, PACED, latency_margin=0.0)
    interval = paced_memory.pacing.interval
    await acquire_cost(open_redis, 50)  # warm the connection and the script cache
    result = {
        "in-memory": (
            us(await acquire_cost(open_memory, grants)),
            await achieved(paced_memory, grants, interval),
        ),
        "redis": (
            us(await acquire_cost(open_redis, grants)),
            await achieved(paced_redis, grants, interval),
        ),
    }
    for limiter in (open_redis, paced_redis):
        await limiter.aclose()
    await client.aclose()
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench redis", description=__doc__)
    parser.add_argument(
        "--url", help="measure this Redis instead of a temporary one (keys are flushed!)"
    )
    parser.add_argument("--grants", type=int, default=200, help="grants per measurement")
    parser.add_argument("--smoke", action="store_true", help="20 grants per measurement")
    args = parser.parse_args(argv)
    grants = 20 if args.smoke else args.grants

    with contextlib.ExitStack() as stack:
        urls = {"given": args.url} if args.url else stack.enter_context(temporary_server())
        trips = {
            transport: asyncio.run(round_trips(url, grants)) for transport, url in urls.items()
        }
        costs = {transport: asyncio.run(latencies(url, grants)) for transport, url in urls.items()}
    print(
        stamp("redis", argv, extra=f"redis-py {redis.__version__}")
        + f" {grants} grants per measurement."
    )
    print()
    print("Script calls (round trips) per grant:")
    print()
    print("| situation | " + " | ".join(urls) + " |")
    print("|---|" + "---:|" * len(urls))
    for situation in next(iter(trips.values())):
        print(f"| {situation} | " + " | ".join(f"{trips[t][situation]:.2f}" for t in urls) + " |")
    print()
    print(
        "Added latency: one `acquire()` on an idle key (microseconds, p50 / p99); and the rate a queue"
    )
    print("of calls achieves at one grant every 2 ms, as a share of that pacing:")
    print()
    print("| limiter | transport | `acquire()` on an idle key (us) | queued rate / pacing |")
    print("|---|---|---:|---:|")
    for transport in urls:
        for name, (cost, late) in costs[transport].items():
            print(f"| {name} | {transport if name == 'redis' else '-'} | {cost} | {late} |")
    return 0
