"""Properties on virtual time: random arrivals, cancellations, max_wait, 429s and successes never put more
than N - 1 grants in any half-open window of T + J (even policy) nor two grants closer than T / N + J
(strict policy), never reorder waiters, and never strand one."""

from __future__ import annotations

import asyncio
import functools

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetpay_async._errors import QueueTimeoutError
from assetpay_async._limiting import LimiterPolicy, MemoryLimiter
from assetpay_async._quota import Quota
from assetpay_async.testing import run_virtual
from tests.support.limiter import KEY, gaps, max_in_window


@attrs.frozen
class Call:
    arrival: float
    cancel_after: float | None
    max_wait: float | None


@attrs.frozen
class Report:
    """A 429 (``retry_after`` may be None) or, when ``ok``, a success."""

    at: float
    ok: bool
    retry_after: float | None


@attrs.frozen
class Scenario:
    limit: int
    period: float
    margin: float
    policy: LimiterPolicy
    calls: list[Call]
    reports: list[Report]


@attrs.frozen
class Outcome:
    arrivals: list[int]
    granted: list[tuple[int, float]]
    timed_out: set[int]
    cancelled: set[int]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    period = draw(st.sampled_from([1.0, 5.0, 60.0]))
    span = 3 * period
    times = st.floats(0, span, allow_nan=False)
    calls = draw(
        st.lists(
            st.builds(
                Call,
                arrival=times,
                cancel_after=st.none() | times,
                max_wait=st.none() | st.floats(0, span, allow_nan=False),
            ),
            min_size=1,
            max_size=30,
        )
    )
    reports = draw(
        st.lists(
            st.builds(
                Report,
                at=times,
                ok=st.booleans(),
                retry_after=st.none() | st.floats(0, period, allow_nan=False),
            ),
            max_size=8,
        )
    )
    return Scenario(
        limit=draw(st.integers(2, 8)),
        period=period,
        margin=draw(st.sampled_from([0.0, 0.25, 1.0])),
        policy=draw(st.sampled_from([LimiterPolicy.EVEN, LimiterPolicy.STRICT])),
        calls=calls,
        reports=reports,
    )


def _play(scenario: Scenario) -> Outcome:
    async def main() -> Outcome:
        loop = asyncio.get_running_loop()
        limiter = MemoryLimiter(
            KEY,
            Quota(scenario.limit, scenario.period),
            policy=scenario.policy,
            latency_margin=scenario.margin,
        )
        arrivals: list[int] = []
        granted: list[tuple[int, float]] = []
        timed_out: set[int] = set()

        async def call(index: int, spec: Call) -> None:
            await asyncio.sleep(spec.arrival)
            arrivals.append(index)
            try:
                await limiter.acquire(max_wait=spec.max_wait)
            except QueueTimeoutError:
                timed_out.add(index)
                return
            granted.append((index, loop.time()))

        tasks = [asyncio.create_task(call(i, spec)) for i, spec in enumerate(scenario.calls)]
        for task, spec in zip(tasks, scenario.calls, strict=True):
            if spec.cancel_after is not None:
                loop.call_later(spec.arrival + spec.cancel_after, task.cancel)
        for report in scenario.reports:
            action = (
                limiter.succeeded
                if report.ok
                else functools.partial(limiter.rate_limited, report.retry_after)
            )
            loop.call_later(report.at, action)
        # A stranded waiter would hang forever: bound the run in virtual time instead.
        async with asyncio.timeout(1e7):
            await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = {i for i, task in enumerate(tasks) if task.cancelled()}
        return Outcome(arrivals, granted, timed_out, cancelled)

    return run_virtual(main())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_window_overflow_no_reordering_nothing_stranded(scenario: Scenario) -> None:
    outcome = _play(scenario)
    times = [t for _, t in outcome.granted]
    n, t, j = scenario.limit, scenario.period, scenario.margin
    if scenario.policy is LimiterPolicy.EVEN:
        assert max_in_window(times, t + j) <= n - 1
    else:
        assert all(gap >= t / n + j for gap in gaps(times))

    position = {index: k for k, index in enumerate(outcome.arrivals)}
    order = [position[index] for index, _ in outcome.granted]
    assert order == sorted(order)

    granted = {index for index, _ in outcome.granted}
    for index in range(len(scenario.calls)):
        assert (index in granted) + (index in outcome.timed_out) + (index in outcome.cancelled) == 1
        if scenario.calls[index].cancel_after is None and scenario.calls[index].max_wait is None:
            assert index in granted
