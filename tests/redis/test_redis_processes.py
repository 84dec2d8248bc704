"""Four OS processes of one merchant against the sandbox: with Redis they share the quota, without they collide.

The sandbox runs on real time in a thread of this process (Redis ``TIME`` is wall-clock time), with a scaled
cancel quota so that each run takes a few seconds. Each worker process (``cancel_worker.py``) has its own
``AssetPaySession`` and cancels its own share of the backlog.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.sandbox import RequestRecord
from tests.redis.processes import ThreadedSandbox, backlog, cancels_of, run_workers
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.redis_server, pytest.mark.slow]

PROCESSES = 4
QUOTA = Quota(80, 4.0)
LATENCY_MARGIN = 0.1
"""J: covers the scheduling jitter of four processes on a busy machine. Even spacing then paces
one grant every (4 + 0.1) / 79 s: 96.3 % of N / T."""


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ThreadedSandbox]:
    threaded = ThreadedSandbox()
    try:
        yield threaded
    finally:
        threaded.close()


def throughput(records: list[RequestRecord]) -> float:
    """Accepted requests per second between the first and the last one, as a share of N / T."""
    accepted = [r.time for r in records if r.status == 200]
    return (len(accepted) - 1) / (accepted[-1] - accepted[0]) / QUOTA.rate


def test_four_processes_share_the_quota_through_redis_and_collide_without_it(
    sandbox: ThreadedSandbox, redis_server: RedisServer, key_prefix: str, tmp_path: Path
) -> None:
    items = 30
    shared_merchant, shared_shares = backlog(sandbox, QUOTA, PROCESSES, items)
    alone_merchant, alone_shares = backlog(sandbox, QUOTA, PROCESSES, items)

    shared = run_workers(
        sandbox,
        shared_merchant,
        shared_shares,
        quota=QUOTA,
        latency_margin=LATENCY_MARGIN,
        redis_url=redis_server.url,
        prefix=key_prefix,
        workdir=tmp_path,
    )
    alone = run_workers(
        sandbox,
        alone_merchant,
        alone_shares,
        quota=QUOTA,
        latency_margin=LATENCY_MARGIN,
        redis_url=None,
        prefix=key_prefix,
        workdir=tmp_path,
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
    merchant, shares = backlog(sandbox, QUOTA, PROCESSES, items)
    owner = {item: index for index, share in enumerate(shares) for _, item in share["items"]}

    def inject() -> None:
        sandbox.sandbox.faults.add(
            "rate-limited",
            group=RouteGroup.CANCEL_ITEM,
            merchant=merchant,
            times=1,
            retry_after=1.0,
        )

    def inject_once_all_four_send() -> None:
        # Not on a timer: on a loaded machine a worker may take seconds to import the SDK.
        while not stop.is_set():
            senders = [owner[r.path.rsplit("/", 2)[-2]] for r in cancels_of(sandbox, merchant)]
            if all(senders.count(index) >= 2 for index in range(PROCESSES)):
                sandbox.call(inject)
                return
            stop.wait(0.02)

    stop = threading.Event()
    injector = threading.Thread(target=inject_once_all_four_send, daemon=True)
    injector.start()
    try:
        reports = run_workers(
            sandbox,
            merchant,
            shares,
            quota=QUOTA,
            latency_margin=LATENCY_MARGIN,
            redis_url=redis_server.url,
            prefix=key_prefix,
            workdir=tmp_path,
        )
    finally:
        stop.set()
        injector.join(timeout=10)

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
