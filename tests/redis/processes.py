"""Helpers of the multi-process tests: a sandbox on real time in a thread, a backlog, worker processes.

Each worker process (``cancel_worker.py``) has its own ``AssetPaySession`` of one merchant and cancels its own
share of the backlog; the sandbox, in a thread of the test process, records when each request arrived.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from assetpay_async._quota import Quota, RouteGroup
from assetpay_async.sandbox import Merchant, RequestRecord, Sandbox

T = TypeVar("T")
WORKER = Path(__file__).with_name("cancel_worker.py")
START_DELAY = 2.0
"""Seconds from launching the workers to their common start: each imports the SDK first."""


class ThreadedSandbox:
    """A started [`Sandbox`][assetpay_async.sandbox.Sandbox] on its own event loop in a thread, on real time."""

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

    def now(self) -> float:
        """The sandbox's clock (the time its request records carry)."""
        return self.call(self.sandbox.clock.now)

    def close(self) -> None:
        self.run(self.sandbox.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def backlog(
    sandbox: ThreadedSandbox, quota: Quota, processes: int, items_per_process: int
) -> tuple[Merchant, list[dict[str, Any]]]:
    """A merchant whose sandbox quota is ``quota`` and, per process, one user with a token and their items."""

    def build() -> tuple[Merchant, list[dict[str, Any]]]:
        sb = sandbox.sandbox
        merchant = sb.add_merchant(quotas={RouteGroup.CANCEL_ITEM: quota})
        shares = []
        for _ in range(processes):
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


def start_workers(
    sandbox: ThreadedSandbox,
    merchant: Merchant,
    shares: list[dict[str, Any]],
    *,
    quota: Quota,
    latency_margin: float,
    redis_url: str | None,
    prefix: str,
    workdir: Path,
) -> tuple[list[subprocess.Popen[str]], float]:
    """Launch one worker per share; return them and the wall-clock time at which they all start."""
    start_at = time.time() + START_DELAY
    common = {
        "base_url": sandbox.sandbox.base_url,
        "merchant_id": merchant.id,
        "quota": [quota.limit, quota.period_seconds],
        "latency_margin": latency_margin,
        "redis": redis_url,
        "prefix": prefix,
        "start_at": start_at,
    }
    jobs = []
    for index, share in enumerate(shares):
        job = workdir / f"{prefix}-{merchant.id}-{index}.json"
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
    return workers, start_at


def reports_of(workers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Wait for every worker; return their JSON reports (a worker that failed fails the test)."""
    reports = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        reports.append(json.loads(out))
    return reports


def run_workers(
    sandbox: ThreadedSandbox,
    merchant: Merchant,
    shares: list[dict[str, Any]],
    **options: Any,
) -> list[dict[str, Any]]:
    """Launch the workers (see `start_workers`) and wait for their reports."""
    workers, _ = start_workers(sandbox, merchant, shares, **options)
    return reports_of(workers)


def cancels_of(sandbox: ThreadedSandbox, merchant: Merchant) -> list[RequestRecord]:
    records = sandbox.call(lambda: sandbox.sandbox.requests)
    return [
        r for r in records if r.merchant_id == merchant.id and r.group is RouteGroup.CANCEL_ITEM
    ]
