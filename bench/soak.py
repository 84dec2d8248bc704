"""Soak: 10,000 cancels through ``asyncio.gather`` with faults mixed in; nothing may leak.

Runs on :class:`~assetpay_async.testing.VirtualTimeLoop` (the sandbox's delays, the SDK's timeouts and
backoffs cost no wall time). A warm-up session makes the process-wide limiter and aiohttp's caches exist; then
the baseline is taken (traced memory, open file descriptors, tasks), the soak session cancels every item with
faults drawn per request, closes, the sandbox settles, and the same three are taken again. Every call must
end in a result or an SDK error.

Run: ``nox -s bench -- soak`` or ``python -m bench soak [--calls 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import time
import tracemalloc
from typing import Any

from assetpay_async import AssetPayError, AssetPaySession, Quota, RetryPolicy
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual

from ._common import stamp

QUOTA = Quota(10**6, 1.0)
ITEMS_PER_TRADE = 100
FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("latency", {"probability": 0.05, "delay": 0.5, "jitter": 1.0}),
    ("reset-before", {"probability": 0.01}),
    ("reset-after", {"probability": 0.01}),
    ("slow-headers", {"probability": 0.005, "delay": 5.0}),
    ("slow-body", {"probability": 0.005, "delay": 5.0}),
    ("html-5xx", {"probability": 0.01}),
    ("empty-502", {"probability": 0.01}),
    ("malformed-json", {"probability": 0.01}),
    ("missing-fields", {"probability": 0.01}),
    ("unknown-error-key", {"probability": 0.005}),
    ("rate-limited", {"probability": 0.002, "retry_after": 1.0}),
    ("maintenance", {"probability": 0.01}),
]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def measure() -> tuple[int, int, int]:
    gc.collect()
    current, _ = tracemalloc.get_traced_memory()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    return current, open_fds(), len(others)


async def soak(count: int, rounds: int) -> dict[str, object]:
    async with Sandbox(seed=4, revert_delay=1.0) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": QUOTA})
        user = sb.add_user(merchant)
        token = sb.token(user)
        trades = [sb.add_trade(user, items=ITEMS_PER_TRADE, age=3600) for _ in range(rounds)]
        trades += [
            sb.add_trade(user, items=ITEMS_PER_TRADE, age=3600)
            for _ in range(rounds * (-(-count // ITEMS_PER_TRADE)))
        ]
        pairs = [(trade.id, item.id) for trade in trades[rounds:] for item in trade.items]
        options: dict[str, Any] = {
            "cancel_quota": QUOTA,
            "base_url": sb.base_url,
            "latency_margin": 0.0,
            "timeout": 2.0,
            "retry": RetryPolicy(max_retries=2, max_rate_limited_wait=30.0),
        }
        async with AssetPaySession(**options) as warm:
            await warm.client(token).cancel_withdrawal_item(trades[0].id, trades[0].items[0].id)
        await sb.settle()
        sb._requests.clear()  # the sandbox's own log grows with traffic: not the SDK's memory
        marks = [measure()]
        outcomes: collections.Counter[str] = collections.Counter()
        wall = 0.0
        peak_fds = 0
        requests = 0
        for n in range(rounds):
            for kind, fault in FAULTS:
                sb.faults.add(kind, group="cancel-item", **fault)
            started = time.perf_counter()
            async with AssetPaySession(**options) as session:
                client = session.client(token)
                results = await asyncio.gather(
                    *(
                        client.cancel_withdrawal_item(t, i)
                        for t, i in pairs[n * count : (n + 1) * count]
                    ),
                    return_exceptions=True,
                )
                peak_fds = max(peak_fds, open_fds())
            wall += time.perf_counter() - started
            for result in results:
                if isinstance(result, AssetPayError):
                    ambiguous = " (ambiguous)" if result.ambiguous else ""
                    outcomes[f"{type(result).__name__}{ambiguous}"] += 1
                elif isinstance(result, BaseException):
                    raise result  # anything but an SDK error is a bug
                else:
                    outcomes["cancelled"] += 1
            del results
            sb.faults.clear()
            await asyncio.sleep(60)  # handlers the client gave up on finish
            await sb.settle()
            requests += len(sb.requests)
            sb._requests.clear()
            marks.append(measure())
    return {
        "marks": marks,
        "peak_fds": peak_fds,
        "outcomes": outcomes,
        "wall": wall,
        "requests": requests,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench soak", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="cancels per round")
    parser.add_argument("--rounds", type=int, default=2, help="soak rounds, each in a new session")
    parser.add_argument("--smoke", action="store_true", help="2 rounds of 500 cancels")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.rounds = 500, 2
    tracemalloc.start()
    report = run_virtual(soak(args.calls, args.rounds))
    tracemalloc.stop()
    marks: list[tuple[int, int, int]] = report["marks"]  # type: ignore[assignment]
    outcomes: collections.Counter[str] = report["outcomes"]  # type: ignore[assignment]
    print(
        stamp("soak", argv, clock="virtual time, tracemalloc on")
        + f" {args.rounds} rounds of {args.calls:,} cancels through `gather`, faults on about 14 % of"
        f" requests; {report['wall']:.1f} s of wall time; {report['requests']:,} requests reached the"
        f" sandbox; at most {report['peak_fds']} descriptors open during a round."
    )
    print()
    print("| after | traced memory (KiB) | vs baseline (KiB) | open fds | pending tasks |")
    print("|---|---:|---:|---:|---:|")
    for n, (memory, fds, tasks) in enumerate(marks):
        name = "baseline (warm-up session closed)" if n == 0 else f"round {n} (session closed)"
        print(
            f"| {name} | {memory / 1024:,.0f} | {(memory - marks[0][0]) / 1024:+,.0f} | {fds} | {tasks} |"
        )
    print("\n| outcome | calls |\n|---|---:|")
    for name, count in outcomes.most_common():
        print(f"| {name} | {count:,} |")
    assert sum(outcomes.values()) == args.calls * args.rounds
    assert all((fds, tasks) == marks[0][1:] for _, fds, tasks in marks), "sockets or tasks leaked"
    return 0
