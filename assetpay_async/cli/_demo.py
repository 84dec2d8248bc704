"""``assetpay demo``: the main job end to end, in one process, over loopback.

An embedded sandbox holds a realistic backlog; a real [`AssetPaySession`][assetpay_async.AssetPaySession]
batch-cancels it at a quota scaled so the run takes ``--seconds``; an aiohttp endpoint built with
`assetpay_async.callbacks.callback_handler` verifies the signed ``reverted`` callbacks; the summary shows outcomes
by seeded kind, the busiest window against the quota, the 429s (zero) and the callbacks verified.
``--compare-naive`` replays the backlog on a fresh sandbox through ``aiolimiter.AsyncLimiter(N, T)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Final

import attrs
from aiohttp import web
from rich.console import Console
from rich.table import Table

from assetpay_async._batch import CancelOutcome
from assetpay_async._limiting import MemoryLimiterRegistry
from assetpay_async._models import TradeStatus
from assetpay_async._quota import Quota, RouteGroup
from assetpay_async._session import AssetPaySession
from assetpay_async.callbacks import CallbackEvent, callback_handler
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import VirtualTimeLoop, run_virtual

from ._backlog import BACKLOG_MIX, Backlog, Category, seed_backlog
from ._chart import Series, series_from_requests, text_chart
from ._exit import ExitCode
from ._naive import NaiveRun, cancel_naively
from ._plot import plot_series
from ._render import BatchProgressBar, console, key_value_table, write_json_line

__all__ = ["DemoReport", "DemoScale", "run_demo"]

_VERIFIED_LIMIT: Final = 60
_CALLBACK_PATH: Final = "/assetpay/callback"


@attrs.frozen
class DemoScale:
    """AssetPay's verified quota (60 a minute) shrunk in time so ``requests`` cancels take about ``seconds``.

    Everything that is per minute in production scales with it: the window T, the latency margin J (1 s a
    minute) and the delay before a cancelled item turns ``reverted`` (5 s a minute).
    """

    quota: Quota
    latency_margin: float
    revert_delay: float

    @property
    def speedup(self) -> float:
        """How many times faster than AssetPay's real minute."""
        return 60.0 / self.quota.period_seconds

    @classmethod
    def for_duration(cls, seconds: float, requests: int, limit: int = _VERIFIED_LIMIT) -> DemoScale:
        """The scale at which ``requests`` cancels take about ``seconds``.

        The SDK grants one request every (T + J) / (N - 1) s with J = T / 60. The speed-up is rounded to a power
        of two so that T, N/T, J and the revert delay are exact binary fractions: on virtual time,
        ``aiolimiter`` (in the naive comparison) then never meets a float shortfall it would spin on.
        """
        gap = seconds / max(requests - 1, 1)
        exact_period = gap * (limit - 1) / (1 + 1 / 60)
        speedup = 2.0 ** round(math.log2(60.0 / exact_period))
        period = 60.0 / speedup
        return cls(Quota(limit, period), latency_margin=period / 60, revert_delay=period / 12)


@attrs.define
class _CallbackLedger:
    """What the demo's callback endpoint saw: verified deliveries and the items they reported reverted."""

    events: int = 0
    reverted: set[tuple[str, str]] = attrs.field(factory=set)

    async def on_event(self, event: CallbackEvent) -> None:
        self.events += 1
        for item in event.trade.items:
            if item.status == TradeStatus.REVERTED:
                self.reverted.add((event.trade.id.lower(), item.id.lower()))


@attrs.frozen
class CategoryResult:
    """One row of the summary: a seeded kind, how many items, how many ended as expected."""

    category: Category
    items: int
    as_expected: int

    @property
    def ok(self) -> bool:
        return self.items == self.as_expected


@attrs.frozen
class DemoReport:
    """Everything the demo measured."""

    scale: DemoScale
    algorithm: str
    categories: tuple[CategoryResult, ...]
    requests: int
    rate_limited: int
    sdk_rate_limited: int
    max_in_window: int
    elapsed: float
    deliveries: int
    callbacks_verified: int
    reverted_seen: int
    cancelled: int
    naive: NaiveRun | None = None
    naive_max_in_window: int | None = None
    chart: Series | None = None
    naive_chart: Series | None = None

    @property
    def ok(self) -> bool:
        """Every item ended as its kind says, no 429, no window over N, every cancelled item's callback seen."""
        return (
            all(c.ok for c in self.categories)
            and self.rate_limited == 0
            and self.max_in_window <= self.scale.quota.limit
            and self.reverted_seen == self.cancelled
        )

    def as_json(self) -> dict[str, Any]:
        quota = self.scale.quota
        body: dict[str, Any] = {
            "ok": self.ok,
            "quota": {"limit": quota.limit, "period_seconds": quota.period_seconds},
            "algorithm": self.algorithm,
            "outcomes": {
                c.category.name.lower(): {
                    "items": c.items,
                    "as_expected": c.as_expected,
                    "expected": c.category.key or c.category.kind.value,
                }
                for c in self.categories
            },
            "requests": self.requests,
            "rate_limited": self.rate_limited,
            "sdk_rate_limited": self.sdk_rate_limited,
            "max_in_window": self.max_in_window,
            "elapsed_seconds": round(self.elapsed, 3),
            "callbacks": {
                "deliveries": self.deliveries,
                "verified": self.callbacks_verified,
                "reverted_items_seen": self.reverted_seen,
                "cancelled": self.cancelled,
            },
        }
        if self.naive is not None:
            body["naive"] = {
                "requests": self.naive.sent,
                "rate_limited": self.naive.rate_limited,
                "cancelled": self.naive.statuses.get(200, 0),
                "max_in_window": self.naive_max_in_window,
                "elapsed_seconds": round(self.naive.elapsed, 3),
            }
        return body


def _matches(category: Category, outcome: CancelOutcome) -> bool:
    if outcome.kind is not category.kind:
        return False
    return category.key is None or getattr(outcome.error, "key", None) == category.key


def _by_category(backlog: Backlog, outcomes: Sequence[CancelOutcome]) -> tuple[CategoryResult, ...]:
    rows = []
    for category in Category:
        mine = [o for o, c in zip(outcomes, backlog.categories, strict=True) if c is category]
        if mine:
            rows.append(
                CategoryResult(category, len(mine), sum(_matches(category, o) for o in mine))
            )
    return tuple(rows)


@contextlib.asynccontextmanager
async def _serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """An aiohttp app with ``handler`` at the callback path on a free loopback port; yields its URL."""
    app = web.Application()
    app.router.add_post(_CALLBACK_PATH, handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}{_CALLBACK_PATH}"
    finally:
        await runner.cleanup()


def _new_sandbox(args: argparse.Namespace, scale: DemoScale) -> Sandbox:
    return Sandbox(seed=args.seed, revert_delay=scale.revert_delay, start=dt.datetime.now(dt.UTC))


async def _run_sdk(args: argparse.Namespace, scale: DemoScale, progress_to: Console) -> DemoReport:
    loop = asyncio.get_running_loop()
    ledger = _CallbackLedger()
    async with _new_sandbox(args, scale) as sandbox:
        merchant = sandbox.add_merchant("verified", quotas={RouteGroup.CANCEL_ITEM: scale.quota})
        backlog = seed_backlog(sandbox, merchant, seed=args.seed)
        # The endpoint checks signatures and timestamps against the sandbox's clock, which is the system
        # clock in a normal run and runs ahead of it under --fast.
        handler = callback_handler(merchant.secret, ledger.on_event, now=sandbox.clock.wall)
        async with _serve(handler) as callback_url:
            merchant.callback_url = callback_url
            async with AssetPaySession(
                cancel_quota=scale.quota,
                base_url=sandbox.base_url,
                latency_margin=scale.latency_margin,
                limiter=MemoryLimiterRegistry(),  # the demo's limiter is its own, whatever else runs
            ) as session:
                client = session.client(sandbox.token(backlog.user))
                started = loop.time()
                refusals = sum(c is not Category.ELIGIBLE for c in backlog.categories)
                with BatchProgressBar(
                    progress_to,
                    len(backlog.pairs),
                    get_time=loop.time,
                    failure_label=f"refused (of {refusals} seeded to be)",
                ) as bar:
                    outcomes = await client.cancel_withdrawal_items(
                        backlog.pairs, on_progress=bar.update
                    )
                elapsed = loop.time() - started
                sdk_rate_limited = session.limiter_stats().rate_limited
            await sandbox.settle()  # every revert done and its callback delivered
        cancelled = {(str(o.trade_id).lower(), str(o.item_id).lower()) for o in outcomes if o.ok}
        totals = sandbox.totals(merchant, RouteGroup.CANCEL_ITEM)
        return DemoReport(
            scale=scale,
            algorithm=sandbox.algorithm.value,
            categories=_by_category(backlog, outcomes),
            requests=totals.accepted + totals.rate_limited,
            rate_limited=totals.rate_limited,
            sdk_rate_limited=sdk_rate_limited,
            max_in_window=sandbox.max_in_window(merchant),
            elapsed=elapsed,
            deliveries=len(sandbox.deliveries),
            callbacks_verified=ledger.events,
            reverted_seen=len(ledger.reverted & cancelled),
            cancelled=len(cancelled),
            chart=series_from_requests(
                "AssetPaySession",
                sandbox.requests,
                limit=scale.quota.limit,
                period=scale.quota.period_seconds,
            ),
        )


async def _run_naive(args: argparse.Namespace, scale: DemoScale) -> tuple[NaiveRun, int, Series]:
    if isinstance(asyncio.get_running_loop(), VirtualTimeLoop):
        # aiolimiter can spin on a float shortfall when virtual time stands still; on a fresh virtual loop whose
        # clock starts at 0 every time it computes is an exact binary fraction (see DemoScale.for_duration).
        return await asyncio.to_thread(run_virtual, _naive_pass(args, scale))
    return await _naive_pass(args, scale)


async def _naive_pass(args: argparse.Namespace, scale: DemoScale) -> tuple[NaiveRun, int, Series]:
    async with _new_sandbox(args, scale) as sandbox:
        merchant = sandbox.add_merchant("verified", quotas={RouteGroup.CANCEL_ITEM: scale.quota})
        backlog = seed_backlog(sandbox, merchant, seed=args.seed)
        run = await cancel_naively(
            sandbox.base_url, sandbox.token(backlog.user), backlog.pairs, scale.quota
        )
        quota = scale.quota
        label = f"AsyncLimiter({quota.limit}, {quota.period_seconds:.2f})"
        chart = series_from_requests(
            label, sandbox.requests, limit=quota.limit, period=quota.period_seconds
        )
        return run, sandbox.max_in_window(merchant), chart


def _compare_table(report: DemoReport, naive: NaiveRun) -> Table:
    """The SDK run beside the naive one, row by row."""
    quota = report.scale.quota
    window = f"{quota.period_seconds:.2f} s"
    compare = Table(title="Same backlog, fresh sandbox", title_justify="left")
    compare.add_column("", no_wrap=True)
    compare.add_column("AssetPaySession", justify="right", no_wrap=True)
    compare.add_column(
        f"AsyncLimiter({quota.limit}, {quota.period_seconds:.2f})",
        justify="right",
        no_wrap=True,
    )
    compare.add_row("requests", str(report.requests), str(naive.sent))
    compare.add_row("429s", str(report.rate_limited), str(naive.rate_limited))
    compare.add_row("items cancelled", str(report.cancelled), str(naive.statuses.get(200, 0)))
    compare.add_row(
        f"most accepted in a {window} window",
        str(report.max_in_window),
        str(report.naive_max_in_window),
    )
    compare.add_row("time", f"{report.elapsed:.1f} s", f"{naive.elapsed:.1f} s")
    return compare


def _render(out: Console, report: DemoReport) -> None:
    quota = report.scale.quota
    window = f"{quota.period_seconds:.2f} s"
    rows = [
        (
            f"{row.category.label}",
            f"{row.items}",
            row.category.key or row.category.kind.value,
            f"{row.as_expected}" + ("" if row.ok else "  MISMATCH"),
        )
        for row in report.categories
    ]
    table = Table(title="Outcomes by seeded kind", title_justify="left")
    for name, justify in (
        ("seeded kind", "left"),
        ("items", "right"),
        ("expected", "left"),
        ("as expected", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(*row)
    out.print(table)
    rate = (report.requests - 1) / report.elapsed if report.elapsed > 0 else math.nan
    out.print(
        key_value_table(
            [
                ("cancel requests sent", str(report.requests)),
                (f"most in any {window} window", f"{report.max_in_window} of N = {quota.limit}"),
                ("429s from the server", str(report.rate_limited)),
                (
                    "batch time",
                    f"{report.elapsed:.1f} s ({rate:.1f}/s, {rate / quota.rate:.0%} of N/T)",
                ),
            ],
            title=f"Quota: {quota.limit} per {window} (AssetPay's 60/min, {report.scale.speedup:.1f}x faster)",
        )
    )
    out.print(
        key_value_table(
            [
                ("deliveries made by the sandbox", str(report.deliveries)),
                ("verified by the endpoint (signature, time)", str(report.callbacks_verified)),
                (
                    "cancelled items seen 'reverted' (refund now)",
                    f"{report.reverted_seen} of {report.cancelled}",
                ),
            ],
            title="Callbacks",
        )
    )
    if report.naive is not None:
        out.print(_compare_table(report, report.naive))
    verdict = (
        "All as expected: every item ended as its kind says, zero 429s, every cancel's callback verified."
        if report.ok
        else "Something did not go as expected: see the rows above."
    )
    out.print(verdict, markup=False)


def _draw_charts(out: Console, report: DemoReport) -> None:
    """The accepted requests per window against the quota line, SDK and naive run one above the other."""
    for chart in (report.chart, report.naive_chart):
        if chart is not None and chart.times:
            out.print()
            for line in text_chart(chart, width=min(max(out.width - 8, 20), 72)):
                out.print(line, markup=False, highlight=False)


async def run_demo(args: argparse.Namespace) -> ExitCode:
    """Run the demo and print (or, with ``--json``, write) its report."""
    if not (math.isfinite(args.seconds) and 1.0 <= args.seconds <= 3600.0):
        console(stderr=True).print(
            "assetpay demo: --seconds must be between 1 and 3600", markup=False
        )
        return ExitCode.USAGE
    out = console(stderr=args.json)
    scale = DemoScale.for_duration(args.seconds, sum(BACKLOG_MIX.values()))
    quota = scale.quota
    out.print(
        f"Cancelling a backlog of {sum(BACKLOG_MIX.values())} items through AssetPaySession against an embedded "
        f"sandbox, at {quota.limit} cancels per {quota.period_seconds:.2f} s"
        f"{' on virtual time' if args.fast else ''}.",
        markup=False,
    )
    report = await _run_sdk(args, scale, out)
    if args.compare_naive:
        out.print(
            "Now the same backlog through aiolimiter.AsyncLimiter(N, T) on a fresh sandbox...",
            markup=False,
        )
        naive, naive_max, naive_chart = await _run_naive(args, scale)
        report = attrs.evolve(
            report, naive=naive, naive_max_in_window=naive_max, naive_chart=naive_chart
        )
    if args.json:
        write_json_line(sys.stdout, report.as_json())
    else:
        _render(out, report)
        _draw_charts(out, report)
    if args.plot is not None:
        charts = [c for c in (report.chart, report.naive_chart) if c is not None]
        plot_series(charts, args.plot)
        out.print(f"Chart written to {args.plot}", markup=False)
    return ExitCode.OK if report.ok else ExitCode.FAILED
