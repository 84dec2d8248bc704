"""Two OS processes of one merchant, their Redis killed (or frozen) mid-run and brought back: never over N.

The processes use the defaults (``AssetPaySession(limiter=url)``: fallback on, 1 s Redis timeout, 1 s
heartbeat). The sandbox, on real time in a thread of this process, answers every cancel (its own quota is far
above the SDK's) and records when each request arrived; the test counts the busiest window of T seconds
before the outage, across it, and after Redis is back. The SDK's quota is scaled to N = 20 per T = 2 s so a
run takes about ten seconds.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assetpay_async._quota import Quota
from tests.redis.processes import (
    ThreadedSandbox,
    backlog,
    cancels_of,
    reports_of,
    start_workers,
)
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

QUOTA = Quota(20, 2.0)
"""The SDK's quota: N = 20 per T = 2 s."""
SERVER_QUOTA = Quota(10_000, 2.0)
"""The sandbox's: it never answers 429, so every request the SDK sends is counted."""
LATENCY_MARGIN = 0.2
"""J: the spread between a grant in a worker and its arrival at the sandbox on a loaded machine."""
PROCESSES = 2
ITEMS = 46
"""Per process: at about nine grants a second in all, enough to stay busy through the three phases."""
BEFORE = 2.5
"""Seconds of normal running before Redis goes away (more than one window)."""
OUTAGE = 3.0
"""Seconds without Redis (more than one window)."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedSandbox]:
    threaded = ThreadedSandbox()
    try:
        yield threaded
    finally:
        threaded.close()


def busiest(times: list[float], starts_from: float, starts_before: float) -> int:
    """The most arrivals in a window ``[t, t + T]`` whose start ``t`` is an arrival in the given span."""
    best = 0
    for i, start in enumerate(times):
        if starts_from <= start < starts_before:
            best = max(best, bisect.bisect_right(times, start + QUOTA.period_seconds) - i)
    return best


def run_through_outage(
    sandbox: ThreadedSandbox,
    server: RedisServer,
    prefix: str,
    workdir: Path,
    *,
    lose: Callable[[], None],
    restore: Callable[[], None],
) -> tuple[dict[str, int], list[dict[str, object]]]:
    """Run the two workers; ``lose`` Redis BEFORE seconds in and ``restore`` it OUTAGE seconds later.

    Returns the busiest window of each phase (windows ending before the loss, windows starting before the
    restore and ending after the loss, windows starting after the restore) and the workers' reports.
    """
    merchant, shares = backlog(sandbox, SERVER_QUOTA, PROCESSES, ITEMS)
    workers, start_at = start_workers(
        sandbox,
        merchant,
        shares,
        quota=QUOTA,
        latency_margin=LATENCY_MARGIN,
        redis_url=server.url,
        prefix=prefix,
        workdir=workdir,
    )
    try:
        time.sleep(max(0.0, start_at + BEFORE - time.time()))
        lost_at = sandbox.now()
        lose()
        time.sleep(OUTAGE)
        restore()
        restored_at = sandbox.now()
        reports = reports_of(workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    times = sorted(r.time for r in cancels_of(sandbox, merchant))
    window = QUOTA.period_seconds
    phases = {
        "before": busiest(times, -float("inf"), lost_at - window),
        "during": busiest(times, lost_at - window, restored_at),
        "after": busiest(times, restored_at, float("inf")),
    }
    outage = [t for t in times if lost_at <= t < restored_at]
    print(
        f"\nbusiest window of {window:g}s (N = {QUOTA.limit}): {phases}; {len(times)} requests, "
        f"{len(outage)} during the {OUTAGE:g}s outage; local grants "
        f"{[report['local_granted'] for report in reports]}"
    )
    # Every item was sent once (nothing failed, nothing retried); the fallback kept cancelling without
    # Redis; the "after" phase lasted two windows.
    assert len(times) == PROCESSES * ITEMS
    assert len(outage) >= QUOTA.limit // 2
    assert times[-1] - restored_at > 2 * window
    return phases, reports


def assert_never_over_quota(phases: dict[str, int], reports: list[dict[str, object]]) -> None:
    assert phases["before"] <= QUOTA.limit
    assert phases["during"] <= QUOTA.limit
    assert phases["after"] <= QUOTA.limit
    assert [report["peers"] for report in reports] == [PROCESSES] * PROCESSES
    assert all(isinstance(r["local_granted"], int) and r["local_granted"] > 0 for r in reports)
    for report in reports:
        outcomes = report["outcomes"]
        assert isinstance(outcomes, dict)
        assert set(outcomes.values()) == {"cancelled"}


def test_redis_killed_and_restarted_empty_never_lets_more_than_n_into_a_window(
    sandbox: ThreadedSandbox, own_redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    phases, reports = run_through_outage(
        sandbox,
        own_redis_server,
        key_prefix,
        tmp_path,
        lose=own_redis_server.kill,
        restore=own_redis_server.start,
    )

    assert_never_over_quota(phases, reports)


def test_redis_frozen_then_thawed_never_lets_more_than_n_into_a_window(
    sandbox: ThreadedSandbox, own_redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    phases, reports = run_through_outage(
        sandbox,
        own_redis_server,
        key_prefix,
        tmp_path,
        lose=own_redis_server.freeze,
        restore=own_redis_server.thaw,
    )

    assert_never_over_quota(phases, reports)
