"""What the even policy guarantees against each server model when the network jitters and sometimes stalls.

The network between a grant and the server's count is played as U(0, ``--jitter``) seconds, plus, for 1 % of
the requests (``--stall-share``), a stall of U(1, 2) s. Each run starts at a random offset into the server's
windows. Two parts:

1. **The schedule alone.** Requests granted exactly on the even grid, g = (T + J) / (N - 1), for a range of J;
   a refused request is counted, not retried. Reported per server model and J: runs with at least one 429,
   429s per run, 429s per request.
2. **The limiter.** The SDK's in-memory limiter on a virtual-time loop, with the same network: a refused request
   reports its 429 (``rate_limited(retry_after)``) and goes back into the queue. Reported: 429s per run and
   the accepted rate between the first and the last accepted request as a share of N / T (the even policy's
   own ceiling is (N - 1) / (N * (1 + J / T))).
3. **Pacing on a real event loop** (no server, wall time): the rate a queue of calls gets from the in-memory
   limiter as a share of its pacing, at a scaled 60 per 3 s (J = 50 ms) and at one grant every 2 ms. Timers
   wake late on a real loop; this is where a schedule that restarts from each wake-up loses.

Run: ``python -m bench server_models [--runs 50] [--requests 600] [--smoke]``; seeded, so the numbers repeat.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics

import attrs

from assetpay_async._limiting import LimiterKey, LimiterPolicy, MemoryLimiter
from assetpay_async._pacing import pacing_for
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.sandbox import RateModel, make_rate_model
from assetpay_async.testing import run_virtual

from ._common import stamp

__all__ = ["main", "schedule_only", "with_limiter"]

MODELS: list[tuple[str, int | None]] = [
    ("gcra", 2),
    ("gcra", None),  # a bucket of N
    ("sliding-log", None),
    ("sliding-counter", None),
    ("fixed-window", None),
]
MARGINS = [0.25, 0.5, 1.0, 2.0]
KEY = LimiterKey("bench", RouteGroup.CANCEL_ITEM)


@attrs.frozen
class Network:
    """The delay from a grant to the server's count of the request."""

    jitter: float = 0.2
    stall_share: float = 0.01
    stall: tuple[float, float] = (1.0, 2.0)

    def delay(self, rng: random.Random) -> float:
        extra = rng.uniform(*self.stall) if rng.random() < self.stall_share else 0.0
        return rng.uniform(0.0, self.jitter) + extra


def _model(name: str, burst: int | None, quota: Quota) -> RateModel:
    return make_rate_model(name, quota, burst=burst)


@attrs.frozen
class ScheduleResult:
    runs: int
    runs_with_429: int
    rate_limited: int
    requests: int


def schedule_only(
    name: str,
    burst: int | None,
    quota: Quota,
    margin: float,
    network: Network,
    *,
    runs: int,
    requests: int,
    seed: int = 1,
) -> ScheduleResult:
    """Grants on the even grid for ``margin``; count the server's refusals (no retries, no reaction)."""
    interval = pacing_for(quota, LimiterPolicy.EVEN, margin).interval
    rng = random.Random(f"{seed}-{name}-{burst}-{margin}")
    hit_runs = refused = 0
    for _ in range(runs):
        model = _model(name, burst, quota)
        offset = rng.uniform(0.0, quota.period_seconds)
        arrivals = sorted(offset + k * interval + network.delay(rng) for k in range(requests))
        run_refused = sum(not model.hit(t).allowed for t in arrivals)
        hit_runs += run_refused > 0
        refused += run_refused
    return ScheduleResult(runs, hit_runs, refused, runs * requests)


@attrs.frozen
class LimiterResult:
    rate_limited: list[int]
    shares: list[float]


def with_limiter(
    name: str,
    burst: int | None,
    quota: Quota,
    margin: float,
    network: Network,
    *,
    runs: int,
    requests: int,
    seed: int = 1,
) -> LimiterResult:
    """The in-memory limiter against the model, on virtual time; a 429 is reported and retried."""
    rng = random.Random(f"{seed}-{name}-{burst}-{margin}-limiter")
    refused_per_run: list[int] = []
    shares: list[float] = []
    for _ in range(runs):
        offset = rng.uniform(0.0, quota.period_seconds)

        async def one_run(offset: float) -> tuple[int, list[float]]:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(offset)
            model = _model(name, burst, quota)
            limiter = MemoryLimiter(KEY, quota, latency_margin=margin)
            accepted: list[float] = []
            refused = 0

            async def request() -> None:
                nonlocal refused
                while True:
                    await limiter.acquire()
                    await asyncio.sleep(network.delay(rng))
                    decision = model.hit(loop.time())
                    if decision.allowed:
                        accepted.append(loop.time())
                        limiter.succeeded()
                        return
                    refused += 1
                    limiter.rate_limited(decision.retry_after)

            await asyncio.gather(*(request() for _ in range(requests)))
            return refused, sorted(accepted)

        refused, accepted = run_virtual(one_run(offset))
        refused_per_run.append(refused)
        shares.append((len(accepted) - 1) / (accepted[-1] - accepted[0]) / quota.rate)
    return LimiterResult(refused_per_run, shares)


async def _real_loop_share(quota: Quota, margin: float, grants: int) -> float:
    limiter = MemoryLimiter(KEY, quota, latency_margin=margin)
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        times.append(loop.time())

    await asyncio.gather(*(call() for _ in range(grants)))
    return (len(times) - 1) / (times[-1] - times[0]) * limiter.pacing.interval


def _label(name: str, burst: int | None) -> str:
    if burst is None:
        return f"{name}, burst N" if name == "gcra" else name
    return f"{name}, burst {burst}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench server_models", description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--requests", type=int, default=600, help="requests per run")
    parser.add_argument("--jitter", type=float, default=0.2, help="network spread U(0, jitter) s")
    parser.add_argument(
        "--stall-share", type=float, default=0.01, help="share of requests stalled 1-2 s"
    )
    parser.add_argument("--smoke", action="store_true", help="3 runs of 120 requests")
    args = parser.parse_args(argv)
    runs, requests = (3, 120) if args.smoke else (args.runs, args.requests)
    network = Network(jitter=args.jitter, stall_share=args.stall_share)
    quota = Quota(60, 60.0)
    print(
        stamp(
            "server_models",
            argv,
            clock="sections 1 and 2 on virtual time and seeded (they repeat exactly), section 3 on wall time",
        )
        + f" N = {quota.limit} per T = {quota.period_seconds:g} s, network U(0, {network.jitter:g}) s + "
        f"{network.stall_share:.0%} stalls of U(1, 2) s; {runs} runs x {requests} requests.\n"
    )
    print("**1. The even schedule alone** (a 429 is counted, not retried)\n")
    print("| server model | J | runs with a 429 | 429s per run | 429s per request |")
    print("|---|---:|---:|---:|---:|")
    for name, burst in MODELS:
        for margin in MARGINS:
            r = schedule_only(name, burst, quota, margin, network, runs=runs, requests=requests)
            print(
                f"| {_label(name, burst)} | {margin:g} s | {r.runs_with_429}/{r.runs} "
                f"| {r.rate_limited / r.runs:.2f} | {r.rate_limited}/{r.requests} |"
            )
    print(
        "\n**2. The in-memory limiter** (J = 1 s; a 429 pauses, is retried, and may slow it down)\n"
    )
    print(
        "| server model | N per min | 429s per run (mean, max) | share of N/T: min / median | ceiling |"
    )
    print("|---|---:|---:|---:|---:|")
    for limit in (60, 10):
        q = Quota(limit, 60.0)
        ceiling = pacing_for(q, LimiterPolicy.EVEN, 1.0).rate / q.rate
        for name, burst in [("gcra", 2), ("sliding-counter", None), ("sliding-log", None)]:
            lr = with_limiter(
                name, burst, q, 1.0, network, runs=max(1, runs // 5), requests=requests
            )
            print(
                f"| {_label(name, burst)} | {limit} | {statistics.mean(lr.rate_limited):.2f}, "
                f"{max(lr.rate_limited)} | {min(lr.shares):.3f} / {statistics.median(lr.shares):.3f} "
                f"| {ceiling:.3f} |"
            )
    print("\n**3. Pacing on a real event loop** (wall time; min / median / max of 3 runs)\n")
    print("| quota | J | grants | one grant every | achieved / pacing |")
    print("|---|---:|---:|---:|---:|")
    for q, margin, full in [(Quota(60, 3.0), 0.05, 60), (Quota(501, 1.0), 0.0, 1000)]:
        grants = min(full, 20) if args.smoke else full
        shares = sorted(asyncio.run(_real_loop_share(q, margin, grants)) for _ in range(3))
        every = pacing_for(q, LimiterPolicy.EVEN, margin).interval
        print(
            f"| {q.limit} per {q.period_seconds:g} s | {margin:g} s | {grants} | {every * 1e3:.1f} ms "
            f"| {shares[0]:.3f} / {shares[1]:.3f} / {shares[2]:.3f} |"
        )
    return 0
