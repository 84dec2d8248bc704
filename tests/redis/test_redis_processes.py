"""Four OS processes of one merchant against the sandbox: with Redis they share the quota, without they collide.

The sandbox runs on real time in a thread of this process (Redis ``TIME`` is wall-clock time), with a scaled
cancel quota so that each run takes a few seconds. Each worker process (``cancel_worker.py``) has its own
``AssetPaySession`` and cancels its own share of the backlog.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.sandbox import Merchant, RequestRecord, Sandbox
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

T = TypeVar("T")
PROCESSES = 4
QUOTA = Quota(80, 4.0)
LATENCY_MARGIN = 0.1
"""J: covers the scheduling jitter of four processes on a busy machine. Even spacing then paces
one grant every (4 + 0.1) / 79 s: 96.3 % of N / T."""
WORKER = Path(__file__).with_name("cancel_worker.py")


class ThreadedSandbox:
    """A started :class:`Sandbox` on its own event loop in a thread, on real time."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.sandbox: Sandbox = self.run(self._start())

    async def _start(self) -> Sandbox:
        sandbox = Sandbox(seed=7)
        await sandbox.start()
        return sandbox

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=60)

    def call(self, fn: Callable[[], T]) -> T:
        async def call() -> T:
            return fn()

        return self.run(call())

    def close(self) -> None:
        self.run(self.sandbox.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedSandbox]:
    threaded = ThreadedSandbox()
    try:
        yield threaded
    finally:
        threaded.close()


def backlog(
    sandbox: ThreadedSandbox, items_per_process: int
) -> tuple[Merchant, list[dict[str, Any]]]:
    """A merchant with the scaled quota and, per process, one user with a token and their items."""

    def build() -> tuple[Merchant, list[dict[str, Any]]]:
        sb = sandbox.sandbox
        merchant = sb.add_merchant(quotas={RouteGroup.CANCEL_ITEM: QUOTA})
        shares = []
        for _ in range(PROCESSES):
            user = sb.add_user(merchant)
            trades = [sb.add_trade(user, items=1, age=3600.0) for _ in range(items_per_process)]
            shares.append(
                {
                    "token": sb.token(user),
                    "items": [[trade.id, trade.items[0].id] for trade in trades],
                }
            )
        return merchant, shares

    return sandbox.call(build)


def run_workers(
    sandbox: ThreadedSandbox,
    merchant: Merchant,
    shares: list[dict[str, Any]],
    *,
    redis_url: str | None,
    prefix: str,
    workdir: Path,
) -> list[dict[str, Any]]:
    start_at = time.time() + 2.0  # every worker imports the SDK first, then all start together
    common = {
        "base_url": sandbox.sandbox.base_url,
        "merchant_id": merchant.id,
        "quota": [QUOTA.limit, QUOTA.period_seconds],
        "latency_margin": LATENCY_MARGIN,
        "redis": redis_url,
        "prefix": prefix,
        "start_at": start_at,
    }
    jobs = []
    for index, share in enumerate(shares):
        job = workdir / f"{prefix}-{redis_url is not None}-{index}.json"
        job.write_text(json.dumps({**common, **share}))  # a file, not argv: the job holds tokens
        jobs.append(job)
    workers = [
        subprocess.Popen(  # noqa: S603 (this interpreter and our own script)
            [sys.executable, str(WORKER), str(job)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for job in jobs
    ]
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def cancels_of(sandbox: ThreadedSandbox, merchant: Merchant) -> list[RequestRecord]:
    records = sandbox.call(lambda: sandbox.sandbox.requests)
    return [
        r for r in records if r.merchant_id == merchant.id and r.group is RouteGroup.CANCEL_ITEM
    ]


def throughput(records: list[RequestRecord]) -> float:
    """Accepted requests per second between the first and the last one, as a share of N / T."""
    accepted = [r.time for r in records if r.status == 200]
    return (len(accepted) - 1) / (accepted[-1] - accepted[0]) / QUOTA.rate


def test_four_processes_share_the_quota_through_redis_and_collide_without_it(
    sandbox: ThreadedSandbox, redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    items = 30
    shared_merchant, shared_shares = backlog(sandbox, items)
    alone_merchant, alone_shares = backlog(sandbox, items)

    shared = run_workers(
        sandbox,
        shared_merchant,
        shared_shares,
        redis_url=redis_server.url,
        prefix=key_prefix,
        workdir=tmp_path,
    )
    alone = run_workers(
        sandbox, alone_merchant, alone_shares, redis_url=None, prefix=key_prefix, workdir=tmp_path
    )

    shared_log, alone_log = (
        cancels_of(sandbox, shared_merchant),
        cancels_of(sandbox, alone_merchant),
    )
    shared_429 = sum(r.rate_limited for r in shared_log)
    alone_429 = sum(r.rate_limited for r in alone_log)
    use = throughput(shared_log)
    busiest = sandbox.call(
        lambda: sandbox.sandbox.quota_share(shared_merchant, RouteGroup.CANCEL_ITEM)
    )
    print(
        f"\n{PROCESSES} processes x {items} cancels, quota {QUOTA.limit}/{QUOTA.period_seconds:g}s, "
        f"J={LATENCY_MARGIN}s:\n"
        f"  redis:     429s={shared_429} use={use:.1%} of N/T busiest window={busiest:.1%} of N\n"
        f"  in-memory: 429s={alone_429} requests={len(alone_log)} for {PROCESSES * items} items"
    )
    for reports in (shared, alone):
        outcomes = [o for report in reports for o in report["outcomes"].values()]
        assert len(outcomes) == PROCESSES * items
        assert set(outcomes) == {"cancelled"}  # every item accounted for, even after 429s
    assert shared_429 == 0
    assert sum(report["rate_limited"] for report in shared) == 0
    assert use >= 0.95
    assert alone_429 > 0


def test_a_429_seen_by_one_process_pauses_all_four(
    sandbox: ThreadedSandbox, redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    items = 15
    merchant, shares = backlog(sandbox, items)
    owner = {item: index for index, share in enumerate(shares) for _, item in share["items"]}
    fault_after = 1.0  # seconds into the run: every process is busy by then

    def inject() -> None:
        sandbox.sandbox.faults.add(
            "rate-limited",
            group=RouteGroup.CANCEL_ITEM,
            merchant=merchant,
            times=1,
            retry_after=1.0,
        )

    timer = threading.Timer(2.0 + fault_after, lambda: sandbox.call(inject))
    timer.start()
    try:
        reports = run_workers(
            sandbox,
            merchant,
            shares,
            redis_url=redis_server.url,
            prefix=key_prefix,
            workdir=tmp_path,
        )
    finally:
        timer.cancel()

    log = cancels_of(sandbox, merchant)
    injected = [r for r in log if r.key == "RATE_LIMITED" and not r.counted]
    assert len(injected) == 1
    at = injected[0].time
    before = {owner[r.path.rsplit("/", 2)[-2]] for r in log if at - 1.0 <= r.time < at}
    during = [r for r in log if at + 0.05 < r.time < at + 1.0]
    after = {owner[r.path.rsplit("/", 2)[-2]] for r in log if r.time >= at + 1.0}
    print(
        f"\ninjected 429 at {at:.3f}s; first request after it at "
        f"{min(r.time for r in log if r.time > at):.3f}s"
    )
    assert before == set(range(PROCESSES))  # all four were sending
    assert during == []  # none of the four sent anything during the pause
    assert after == set(range(PROCESSES))  # and all four carried on
    assert {o for report in reports for o in report["outcomes"].values()} == {"cancelled"}
    assert sum(report["rate_limited"] for report in reports) == 1
