"""Quota use and 429s per server model: the default session, a measured margin and a declared server model
beside ``AsyncLimiter(N, T)`` and ``AsyncLimiter(1, T/N)``, in one run (issue 23).

1. **Over loopback** (the sandbox on 127.0.0.1, real sockets, on virtual time so that 5 minutes of quota take
   seconds): a backlog of 5 x N cancels of one merchant, every cancel delayed U(0, ``--jitter``) s before the
   server counts it. The SDK retries a 429; the aiolimiter baselines do not (a 429 is lost). Reported: 429s and
   the accepted rate between the first and the last accepted cancel as a share of N / T.
   On virtual time the SDK's send-to-answer clock (``perf_counter``) does not see the injected delay, so the
   measured margin (the default session's too) starts at 1 s, and after 20 answers comes down to its floor
   (0.1 s), halving once a window: section 2 is where it has to follow the network.
2. **A simulated network** (no sockets, virtual time): the in-memory limiter against each server model, the
   delay to the server U(0, ``--jitter``) s, first alone, then plus, for 1 % of the requests, a stall of
   U(1, 2) s; the answer comes back after another U(0, ``--jitter``) s and its send-to-answer time is reported
   to the limiter (so the measured margin sees the jitter and the stalls). A 429 pauses and is retried.
   Reported per setting: 429s per run (mean, max) and the share of N / T.

Run: ``python -m bench quota_use [--cancels-per-n 5] [--runs 10] [--smoke]``; seeded, so the numbers repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import functools
import random
import statistics
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import aiolimiter
import attrs

from assetpay_async import AssetPaySession, Quota
from assetpay_async._limiting import LimiterKey, MemoryLimiter, MemoryLimiterRegistry
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox, ServerAlgorithm, make_rate_model

from ._common import stamp
from .limiter import TickingVirtualTimeLoop

T = TypeVar("T")

MODELS: list[tuple[ServerAlgorithm, int | None, str | None]] = [
    (ServerAlgorithm.SLIDING_LOG, None, "sliding-log"),
    (ServerAlgorithm.SLIDING_COUNTER, None, None),  # cannot be declared: it needs the reserve grant
    (ServerAlgorithm.FIXED_WINDOW, None, "fixed-window"),
    (ServerAlgorithm.GCRA, None, "bucket"),  # a bucket of N
]
"""The four models of issue 23: both sections."""
MORE_MODELS: list[tuple[ServerAlgorithm, int | None, str | None]] = [
    (ServerAlgorithm.ANCHORED_WINDOW, None, "fixed-window"),
    (ServerAlgorithm.BLOCK_PENALTY, None, "fixed-window"),
    (ServerAlgorithm.GCRA, 2, None),  # a bucket of 2 is not a bucket of N
]
"""The others the sandbox plays: section 1 only."""
QUOTAS = (Quota(60, 60.0), Quota(10, 60.0))
KEY = LimiterKey("bench", RouteGroup.CANCEL_ITEM)


def _virtual(coro: Coroutine[Any, Any, T]) -> T:
    # A clock that moves a nanosecond per reading: aiolimiter can spin forever on one that stands still.
    with asyncio.Runner(loop_factory=TickingVirtualTimeLoop) as runner:
        return runner.run(coro)


def _share(times: list[float], quota: Quota) -> float:
    """Accepted per second between the first and the last accepted, as a share of N / T."""
    if len(times) < 2 or times[-1] <= times[0]:
        return 0.0
    return (len(times) - 1) / (times[-1] - times[0]) / quota.rate


@attrs.frozen
class Setting:
    """One way of pacing the backlog."""

    name: str
    session: (
        dict[str, object] | None
    )  # AssetPaySession keyword arguments; None: an aiolimiter baseline
    bucket: tuple[int, float] = (1, 1.0)  # the baseline's AsyncLimiter(max_rate, time_period)


def settings(quota: Quota, declared: str | None) -> list[Setting]:
    n, t = quota.limit, quota.period_seconds
    rows = [
        Setting("SDK default (measured, from 1 s)", {}),
        Setting("SDK `latency_margin=1.0` (fixed)", {"latency_margin": 1.0}),
        Setting('SDK `latency_margin="measured"`', {"latency_margin": "measured"}),
    ]
    if declared is not None:
        rows.append(
            Setting(
                f'SDK measured + `server_model="{declared}"`',
                {"latency_margin": "measured", "server_model": declared},
            )
        )
    rows += [
        Setting(f"`AsyncLimiter({n}, {t:g})`", None, (n, t)),
        Setting(f"`AsyncLimiter(1, {t / n:g})`", None, (1, t / n)),
    ]
    return rows


async def _baseline(
    base_url: str, token: str, pairs: list[tuple[str, str]], bucket: tuple[int, float]
) -> None:
    limiter = aiolimiter.AsyncLimiter(*bucket)
    queue = list(reversed(pairs))
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base_url=base_url) as http:

        async def worker() -> None:
            while queue:
                trade_id, item_id = queue.pop()
                async with limiter:
                    path = f"/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
                    async with http.post(path, headers=headers) as response:
                        await response.read()

        await asyncio.gather(*(worker() for _ in range(64)))


async def loopback_run(
    model: tuple[ServerAlgorithm, int | None, str | None],
    quota: Quota,
    setting: Setting,
    cancels: int,
    jitter: float,
) -> tuple[int, float, int]:
    """(429s, share of N/T, accepted) of one backlog through ``setting`` against ``model``."""
    algorithm, burst, _ = model
    async with Sandbox(algorithm=algorithm, burst=burst, seed=3, revert_delay=10**6) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": quota})
        user = sb.add_user(merchant)
        trades = [
            sb.add_trade(user, items=5, age=dt.timedelta(hours=1)) for _ in range(cancels // 5)
        ]
        pairs = [(t.id, i.id) for t in trades for i in t.items]
        sb.faults.add("latency", group="cancel-item", jitter=jitter)
        if setting.session is None:
            await _baseline(sb.base_url, sb.token(user), pairs, setting.bucket)
        else:
            async with AssetPaySession(
                cancel_quota=quota,
                base_url=sb.base_url,
                limiter=MemoryLimiterRegistry(),
                **setting.session,  # type: ignore[arg-type]
            ) as session:
                client = session.client(sb.token(user))
                await asyncio.gather(*(client.cancel_withdrawal_item(*p) for p in pairs))
        accepted = sorted(
            r.time for r in sb.requests if r.group is RouteGroup.CANCEL_ITEM and r.status == 200
        )
        refused = sb.totals(merchant, "cancel-item").rate_limited
        return refused, _share(accepted, quota), len(accepted)


@attrs.frozen
class Network:
    """Delays of a simulated network: to the server, and back."""

    jitter: float
    stall_share: float = 0.01
    stall: tuple[float, float] = (1.0, 2.0)

    def there(self, rng: random.Random) -> float:
        extra = rng.uniform(*self.stall) if rng.random() < self.stall_share else 0.0
        return rng.uniform(0.0, self.jitter) + extra

    def back(self, rng: random.Random) -> float:
        return rng.uniform(0.0, self.jitter)


def stalling_run(
    algorithm: ServerAlgorithm,
    quota: Quota,
    make: Callable[[], MemoryLimiter],
    network: Network,
    *,
    requests: int,
    seed: str,
) -> tuple[int, float]:
    """(429s, share of N/T) of ``requests`` through one limiter against ``algorithm``, on virtual time."""
    rng = random.Random(seed)

    async def run() -> tuple[int, list[float]]:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(rng.uniform(0.0, quota.period_seconds))  # a random phase of the windows
        model = make_rate_model(algorithm, quota)
        limiter = make()
        accepted: list[float] = []
        refused = 0

        async def request() -> None:
            nonlocal refused
            while True:
                await limiter.acquire()
                there = network.there(rng)
                await asyncio.sleep(there)
                decision = model.hit(loop.time())
                await asyncio.sleep(back := network.back(rng))
                limiter.observe_wire(there + back)
                if decision.allowed:
                    accepted.append(loop.time() - back)
                    return
                refused += 1
                limiter.rate_limited(decision.retry_after)

        await asyncio.gather(*(request() for _ in range(requests)))
        return refused, sorted(accepted)

    refused, accepted = _virtual(run())
    return refused, _share(accepted, quota)


def _label(algorithm: ServerAlgorithm, burst: int | None = None) -> str:
    if algorithm is ServerAlgorithm.GCRA:
        return "bucket of N" if burst is None else f"gcra, burst {burst}"
    return algorithm.value


def _section_one(per_n: int, jitter: float) -> None:
    print(
        f"**1. Over loopback** (sandbox on 127.0.0.1, virtual time; every cancel delayed U(0, {jitter:g}) s "
        f"before it is counted; a backlog of {per_n} x N)\n"
    )
    print("| N per T | server model | setting | 429s | share of N/T | accepted |")
    print("|---|---|---|---:|---:|---:|")
    for quota in QUOTAS:
        cancels = per_n * quota.limit
        for model in MODELS + MORE_MODELS:
            for setting in settings(quota, model[2]):
                refused, share, accepted = _virtual(
                    loopback_run(model, quota, setting, cancels, jitter)
                )
                print(
                    f"| {quota.limit} per {quota.period_seconds:g} s | {_label(*model[:2])} "
                    f"| {setting.name} | {refused} | {share:.3f} | {accepted}/{cancels} |"
                )


def _section_two(runs: int, requests: int, jitter: float) -> None:
    print(
        f"\n**2. A simulated network** (virtual time, no sockets; U(0, {jitter:g}) s each way, then also 1 % "
        f"of the requests stalled U(1, 2) s on the way; {runs} runs x {requests} requests)\n"
    )
    print(
        "| network | N per T | server model | setting | 429s per run (mean, max) "
        "| share of N/T: min / median |"
    )
    print("|---|---|---|---|---:|---:|")
    for network in (Network(jitter, stall_share=0.0), Network(jitter)):
        _section_two_rows(runs, requests, network)


def _section_two_rows(runs: int, requests: int, network: Network) -> None:
    what = "jitter" if network.stall_share == 0 else f"jitter + {network.stall_share:.0%} stalls"
    for quota in QUOTAS:
        for algorithm, _, declared in MODELS:
            rows: list[tuple[str, Callable[[], MemoryLimiter]]] = [
                ("J = 1 s", functools.partial(MemoryLimiter, KEY, quota, latency_margin=1.0)),
                (
                    "measured",
                    functools.partial(MemoryLimiter, KEY, quota, latency_margin="measured"),
                ),
            ]
            if declared is not None:
                rows.append(
                    (
                        f'measured + "{declared}"',
                        functools.partial(
                            MemoryLimiter,
                            KEY,
                            quota,
                            latency_margin="measured",
                            server_model=declared,
                        ),
                    )
                )
            for name, make in rows:
                results = [
                    stalling_run(
                        algorithm,
                        quota,
                        make,
                        network,
                        requests=requests,
                        seed=f"{what}-{algorithm}-{k}",
                    )
                    for k in range(runs)
                ]
                refused = [r for r, _ in results]
                shares = [s for _, s in results]
                print(
                    f"| {what} | {quota.limit} per {quota.period_seconds:g} s | {_label(algorithm)} "
                    f"| {name} "
                    f"| {statistics.mean(refused):.2f}, {max(refused)} "
                    f"| {min(shares):.3f} / {statistics.median(shares):.3f} |"
                )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench quota_use", description=__doc__)
    parser.add_argument("--cancels-per-n", type=int, default=5, help="section 1 backlog, x N")
    parser.add_argument("--jitter", type=float, default=0.05, help="network spread, seconds")
    parser.add_argument("--runs", type=int, default=10, help="section 2 runs per row")
    parser.add_argument("--requests", type=int, default=300, help="section 2 requests per run")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes")
    args = parser.parse_args(argv)
    per_n, runs, requests = (
        (1, 1, 30) if args.smoke else (args.cancels_per_n, args.runs, args.requests)
    )
    print(
        stamp("quota_use", argv, clock="virtual time and seeded: the numbers repeat exactly") + "\n"
    )
    _section_one(per_n, args.jitter)
    _section_two(runs, requests, args.jitter)
    return 0
