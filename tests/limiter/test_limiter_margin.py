"""Issue 23: a latency margin measured from send-to-answer times, and a declared server model.

Virtual time throughout: the estimator on plain numbers, the limiter on a virtual-time loop, the session
against the sandbox on one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math

import fakeredis
import pytest

from assetpay_async import AssetPaySession, ConfigurationError, Quota, ServerModel
from assetpay_async._limiting import MemoryLimiter, MemoryLimiterRegistry
from assetpay_async._pacing import (
    FLOAT_GUARD,
    MARGIN_FLOOR,
    MARGIN_MIN_SAMPLES,
    MARGIN_SAMPLES,
    MARGIN_START,
    MarginEstimator,
    PacingConfig,
    checked_config,
    combined,
    pacing_for,
)
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.limiter import KEY, gaps

Q60 = Quota(60, 60.0)


def interval(limit: int, margin: float, per: int | None = None) -> float:
    """(T + J) / (per or N - 1), widened by the float guard, for a 60 s window."""
    return (60.0 + margin) / (per if per is not None else limit - 1) * (1 + FLOAT_GUARD)


# -- the estimator, on plain numbers ----------------------------------------------------------------------


def test_the_margin_starts_at_one_second_and_time_alone_does_not_bring_it_down() -> None:
    """Fail closed: with nothing seen, J is the old fixed 1 s, however long nothing is seen."""
    estimator = MarginEstimator(half_life=60.0)
    assert MARGIN_START == 1.0
    assert estimator.value(0.0) == MARGIN_START
    assert estimator.value(1e6) == MARGIN_START


def test_the_margin_does_not_come_down_before_the_minimum_number_of_answers() -> None:
    estimator = MarginEstimator(half_life=60.0)
    assert MARGIN_MIN_SAMPLES == 20
    # Quick answers, far apart: no evidence of a small spread yet.
    for k in range(MARGIN_MIN_SAMPLES - 1):
        assert not estimator.observe(0.003, now=1000.0 * k)
        assert estimator.value(1000.0 * k) == MARGIN_START
    assert estimator.value(1e9) == MARGIN_START


def test_the_margin_comes_down_after_the_minimum_no_faster_than_its_half_life() -> None:
    estimator = MarginEstimator(half_life=60.0)
    for k in range(MARGIN_MIN_SAMPLES - 1):
        estimator.observe(0.003, now=float(k))
    settled_at = 100.0  # the twentieth answer, late: the descent starts here, not at the first
    estimator.observe(0.003, now=settled_at)
    assert estimator.value(settled_at) == MARGIN_START
    assert estimator.value(settled_at + 30.0) == pytest.approx(MARGIN_START * 0.5**0.5)
    assert estimator.value(settled_at + 60.0) == pytest.approx(MARGIN_START / 2)
    assert estimator.value(settled_at + 120.0) == pytest.approx(MARGIN_START / 4)
    assert estimator.value(settled_at + 3600.0) == MARGIN_FLOOR


def test_a_small_spread_settles_at_the_floor_after_the_start() -> None:
    estimator = MarginEstimator(half_life=60.0)
    for k in range(500):  # loopback with up to 50 ms of jitter, one answer a second
        estimator.observe(0.001 + 0.05 * ((k * 37) % 100) / 100, now=float(k))
    assert estimator.value(500.0) == MARGIN_FLOOR


def test_a_stall_after_the_descent_raises_the_margin_at_once() -> None:
    estimator = MarginEstimator(half_life=60.0)
    for k in range(300):
        estimator.observe(0.02, now=float(k))
    assert estimator.value(300.0) == MARGIN_FLOOR
    assert estimator.observe(1.52, now=300.0)
    assert estimator.value(300.0) == pytest.approx(1.5)


def test_one_stall_raises_the_margin_at_once_to_its_spread() -> None:
    estimator = MarginEstimator(half_life=60.0)
    for k in range(10):
        assert not estimator.observe(0.02, now=float(k))
    assert estimator.observe(1.82, now=10.0)
    assert estimator.value(10.0) == pytest.approx(1.8)


def test_the_margin_shrinks_slowly_once_the_stall_has_left_the_recent_answers() -> None:
    estimator = MarginEstimator(half_life=60.0)
    estimator.observe(0.02, now=0.0)
    estimator.observe(2.02, now=1.0)
    for k in range(MARGIN_SAMPLES):  # the stall leaves the window of recent answers
        estimator.observe(0.02, now=2.0 + k * 0.01)
    # Still 2 s while the stall is recent; then halving its excess every half-life, never below the floor.
    assert estimator.value(1.0 + 60.0) == pytest.approx(1.0)
    assert estimator.value(1.0 + 120.0) == pytest.approx(0.5)
    assert estimator.value(1.0 + 3600.0) == MARGIN_FLOOR


def test_the_margin_settles_at_a_high_percentile_of_the_recent_spread() -> None:
    estimator = MarginEstimator(half_life=1.0)
    for k in range(MARGIN_SAMPLES):  # spreads 0 .. 0.5 s above the fastest, evenly
        estimator.observe(0.01 + 0.5 * k / (MARGIN_SAMPLES - 1), now=100.0 + k)
    # Long after every peak decayed: the 99th percentile of the spread, about 0.495 s.
    assert estimator.value(10_000.0) == pytest.approx(0.495, abs=0.003)


# -- the limiter, on virtual time ---------------------------------------------------------------------------


def test_the_margin_grows_after_a_stall_before_the_next_grant() -> None:
    """A stall seen between two grants pushes the second: it comes one new interval after the first."""

    async def main() -> float:
        limiter = MemoryLimiter(KEY, Q60, latency_margin="measured")
        loop = asyncio.get_running_loop()
        await limiter.acquire()
        first = loop.time()
        limiter.observe_wire(0.01)
        await asyncio.sleep(0.5)  # the next grant is scheduled at the floor's interval by now
        limiter.observe_wire(2.01)  # a request that stalled for 2 s
        assert limiter.latency_margin == pytest.approx(2.0)
        await limiter.acquire()
        return loop.time() - first

    assert run_virtual(main()) == pytest.approx(interval(60, 2.0))


def test_the_default_margin_paces_at_one_second_then_comes_down_no_faster_than_a_window() -> None:
    """The in-memory limiter measures by default: 1 s for the first 20 answers, then down to the floor."""

    async def main() -> list[float]:
        limiter = MemoryLimiter(KEY, Q60)  # no latency_margin: measured
        assert limiter.config.margin is None
        times: list[float] = []
        for _ in range(400):
            await limiter.acquire()
            times.append(asyncio.get_running_loop().time())
            limiter.observe_wire(0.003)
        return times

    times = run_virtual(main())
    steps = gaps(times)
    # The 20th answer comes after the 20th grant, whose successor was already due: 21 gaps at J = 1 s.
    assert steps[: MARGIN_MIN_SAMPLES + 1] == pytest.approx([interval(60, 1.0)] * 21)
    assert all(step < interval(60, 1.0) for step in steps[MARGIN_MIN_SAMPLES + 1 :])
    settled_at = times[MARGIN_MIN_SAMPLES - 1]
    for k in range(MARGIN_MIN_SAMPLES, len(times)):  # never faster than J halving once a window
        bound = max(MARGIN_FLOOR, 0.5 ** ((times[k] - settled_at) / 60.0))
        assert steps[k - 1] >= interval(60, bound) * (1 - 1e-9)
    assert steps[-10:] == pytest.approx([interval(60, MARGIN_FLOOR)] * 10)


def test_a_fixed_margin_ignores_what_the_wire_shows() -> None:
    async def main() -> float:
        limiter = MemoryLimiter(KEY, Q60, latency_margin=1.0)
        await limiter.acquire()
        limiter.observe_wire(0.01)
        limiter.observe_wire(5.0)
        return await limiter.acquire()

    assert run_virtual(main()) == pytest.approx(interval(60, 1.0))


@pytest.mark.parametrize("bad", [-0.1, math.nan, math.inf])
def test_a_nonsense_wire_time_is_ignored(bad: float) -> None:
    limiter = MemoryLimiter(KEY, Q60, latency_margin="measured", clock=lambda: 0.0)
    for _ in range(MARGIN_MIN_SAMPLES + 5):  # not counted as answers: J stays at its start
        limiter.observe_wire(bad)
    assert limiter.latency_margin == MARGIN_START
    assert limiter.pacing.interval == pytest.approx(interval(60, MARGIN_START))


# -- the declared server model -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["sliding-log", "fixed-window", "bucket"])
def test_a_declared_server_model_spaces_grants_n_per_t_plus_j(model: str) -> None:
    limiter = MemoryLimiter(KEY, Quota(10, 60.0), latency_margin=1.0, server_model=model)
    assert limiter.pacing.interval == pytest.approx(interval(10, 1.0, per=10))


def test_the_default_server_model_keeps_one_grant_in_reserve() -> None:
    limiter = MemoryLimiter(KEY, Quota(10, 60.0), latency_margin=1.0)
    assert limiter.pacing.interval == pytest.approx(interval(10, 1.0))
    assert pacing_for(Quota(10, 60.0), "even", 1.0).interval == pytest.approx(  # type: ignore[arg-type]
        interval(10, 1.0)
    )


def test_one_per_window_with_a_declared_model_is_t_plus_j() -> None:
    limiter = MemoryLimiter(KEY, Quota(1, 60.0), latency_margin=1.0, server_model="sliding-log")
    assert limiter.pacing.interval == pytest.approx(61.0 * (1 + FLOAT_GUARD))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_model": "sliding-counter"},  # never declarable: it needs the reserve
        {"server_model": "burst"},
        {"latency_margin": -1.0},
        {"latency_margin": math.inf},
        {"latency_margin": True},
        {"latency_margin": "guessed"},
        {"policy": "burst"},
    ],
)
def test_bad_limiter_arguments_are_configuration_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        MemoryLimiter(KEY, Q60, **kwargs)  # type: ignore[arg-type]


# -- through the session --------------------------------------------------------------------------------------


def test_the_session_passes_the_measured_margin_and_model_to_its_limiter() -> None:
    registry = MemoryLimiterRegistry()

    async def main() -> MemoryLimiter:
        async with AssetPaySession(
            tier="unverified",
            merchant_id="m-1",
            limiter=registry,
            latency_margin="measured",
            server_model=ServerModel.SLIDING_LOG,
        ) as session:
            limiter = session._requester.limiter("m-1", RouteGroup.CANCEL_ITEM)
            assert isinstance(limiter, MemoryLimiter)
            return limiter

    limiter = run_virtual(main())
    assert limiter.config.margin is None
    assert limiter.config.server_model is ServerModel.SLIDING_LOG
    assert limiter.pacing.interval == pytest.approx(interval(10, MARGIN_START, per=10))


def test_a_default_session_measures_with_the_in_memory_limiter() -> None:
    registry = MemoryLimiterRegistry()

    async def main() -> None:
        async with AssetPaySession(tier="verified", merchant_id="m-1", limiter=registry) as session:
            limiter = session._requester.limiter("m-1", RouteGroup.CANCEL_ITEM)
            assert isinstance(limiter, MemoryLimiter)
            assert limiter.config.margin is None  # measured
            assert limiter.latency_margin == MARGIN_START  # nothing seen yet: the old fixed 1 s

    run_virtual(main())


@pytest.mark.parametrize("margin", [0.0, 0.25, 1.0, 2])
def test_an_explicit_number_keeps_the_margin_fixed(margin: float) -> None:
    registry = MemoryLimiterRegistry()

    async def main() -> MemoryLimiter:
        async with AssetPaySession(
            tier="verified", merchant_id="m-1", limiter=registry, latency_margin=margin
        ) as session:
            limiter = session._requester.limiter("m-1", RouteGroup.CANCEL_ITEM)
            assert isinstance(limiter, MemoryLimiter)
            for _ in range(MARGIN_MIN_SAMPLES + 5):
                limiter.observe_wire(0.003 if margin else 3.0)
            return limiter

    limiter = run_virtual(main())
    assert limiter.config.margin == margin
    assert limiter.latency_margin == margin
    assert limiter.pacing.interval == pytest.approx(
        pacing_for(Quota(60, 60.0), limiter.config.policy, margin).interval
    )


class _AskedRegistry:
    """A registry of one's own (not the in-memory one): records what the session asks it for."""

    def __init__(self) -> None:
        self.asked: list[dict[str, object]] = []
        self.limiter = MemoryLimiter(KEY, Q60, latency_margin=1.0)

    def get(self, *args: object, **kwargs: object) -> MemoryLimiter:
        self.asked.append(kwargs)
        return self.limiter

    async def aclose(self) -> None:
        return None


def test_a_default_session_keeps_a_fixed_second_with_a_registry_of_its_own() -> None:
    registry = _AskedRegistry()

    async def main() -> None:
        async with AssetPaySession(tier="verified", merchant_id="m-1", limiter=registry) as session:
            session._requester.limiter("m-1", RouteGroup.CANCEL_ITEM)

    run_virtual(main())
    assert [asked["latency_margin"] for asked in registry.asked] == [1.0]


async def test_a_default_session_keeps_a_fixed_second_with_redis() -> None:
    """Redis cannot measure (its ``observe_wire`` does nothing): the default stays the fixed 1 s."""
    client = fakeredis.FakeAsyncRedis()
    session = AssetPaySession(cancel_quota=Q60, merchant_id="m", limiter=client)
    try:
        limiter = session._requester.limiter("m", RouteGroup.CANCEL_ITEM)
        assert limiter.latency_margin == 1.0  # type: ignore[attr-defined]
    finally:
        await session.aclose()
        await client.aclose()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"server_model": "sliding-counter"},
        {"latency_margin": "measured", "limiter": "redis://127.0.0.1:1/0"},
        {"server_model": "bucket", "limiter": "redis://127.0.0.1:1/0"},
    ],
)
def test_the_session_refuses_what_its_limiter_cannot_do(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        AssetPaySession(tier="verified", merchant_id="m-1", **kwargs)  # type: ignore[arg-type]


class _Recording(MemoryLimiter):
    """A real in-memory limiter that also keeps the wire times it is told."""

    __slots__ = ("seen",)

    def __init__(self) -> None:
        super().__init__(KEY, Quota(60, 6.0), latency_margin="measured")
        self.seen: list[float] = []

    def observe_wire(self, seconds: float) -> None:
        self.seen.append(seconds)
        super().observe_wire(seconds)


class _OneLimiter:
    """A registry handing out one limiter."""

    def __init__(self, limiter: MemoryLimiter) -> None:
        self.limiter = limiter

    def get(self, *args: object, **kwargs: object) -> MemoryLimiter:
        return self.limiter

    async def aclose(self) -> None:
        return None


def test_every_answered_attempt_reports_its_wire_time_to_the_limiter() -> None:
    """C2: the transport tells the limiter each answered attempt's send-to-answer time, a 429 included."""
    quota = Quota(60, 6.0)
    limiter = _Recording()

    async def main() -> None:
        async with Sandbox(seed=5) as sb:
            merchant = sb.add_merchant("verified", quotas={"cancel-item": quota})
            user = sb.add_user(merchant)
            trade = sb.add_trade(user, items=3, age=dt.timedelta(hours=1))
            async with AssetPaySession(
                cancel_quota=quota, base_url=sb.base_url, limiter=_OneLimiter(limiter)
            ) as session:
                client = session.client(sb.token(user))
                await client.cancel_withdrawal_item(trade.id, trade.items[0].id)
                sb.faults.add("rate-limited", group="cancel-item", times=1, retry_after=0.5)
                await client.cancel_withdrawal_item(trade.id, trade.items[1].id)

    run_virtual(main())
    assert len(limiter.seen) == 3  # one answer, a 429 and its retry's answer
    assert all(0 <= s < 5 for s in limiter.seen)


# -- the lock-free grant and the hand-over between loops ----------------------------------------------------


def test_a_loop_that_stopped_without_closing_does_not_hold_up_the_next_one() -> None:
    """The solo loop has stopped (not closed): the next loop's hand-over returns at once."""
    limiter = MemoryLimiter(KEY, Quota(1000, 1.0), latency_margin=0.0)
    stopped = asyncio.new_event_loop()
    try:
        assert stopped.run_until_complete(limiter.acquire()) == 0.0  # granted lock-free, solo
        assert stopped.run_until_complete(limiter.acquire()) > 0.0  # paced: one interval later

        async def next_loop() -> float:
            return await asyncio.wait_for(limiter.acquire(), timeout=1.0)

        assert asyncio.run(next_loop()) < 0.5
        assert limiter.stats().granted == 3
    finally:
        stopped.close()


def test_the_lock_free_grant_keeps_the_spacing_and_the_pause() -> None:
    async def main() -> list[float]:
        limiter = MemoryLimiter(KEY, Q60, latency_margin=1.0)
        loop = asyncio.get_running_loop()
        times: list[float] = []
        for _ in range(3):
            await limiter.acquire()
            times.append(loop.time())
            await asyncio.sleep(5.0)  # idle: each call finds the slot free
        limiter.rate_limited(30.0)
        await limiter.acquire()
        times.append(loop.time())
        return times

    times = run_virtual(main())
    assert times[:3] == pytest.approx([0.0, 5.0, 10.0])
    assert times[3] == pytest.approx(15.0 + 30.0)  # not before the pause ends


def solo_of(limiter: MemoryLimiter) -> object:
    """The loop that may grant without the lock (read through a call so the type checker does not narrow it)."""
    return limiter._solo


def test_two_live_loops_never_take_turns_at_the_lock_free_grant() -> None:
    """Once a second live loop has used the limiter, neither grants without the lock until one closes."""
    limiter = MemoryLimiter(KEY, Quota(1000, 1.0), latency_margin=0.0)
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first.run_until_complete(limiter.acquire())
        assert solo_of(limiter) is first
        second.run_until_complete(limiter.acquire())  # hands over from the first, which still lives
        assert solo_of(limiter) is None
        first.run_until_complete(limiter.acquire())
        assert solo_of(limiter) is None  # the second may still have waiters and timers
        second.close()
        first.run_until_complete(limiter.acquire())
        assert solo_of(limiter) is first
        assert limiter.stats().granted == 4
    finally:
        first.close()
        second.close()


# -- a fixed J and a measured one asked of one limiter ---------------------------------------------------


def _config(margin: float | str, quota: Quota = Q60) -> PacingConfig:
    return checked_config(quota, "even", margin, "unknown")


def test_a_fixed_margin_asked_beside_a_measured_one_becomes_its_floor() -> None:
    measured, fixed = _config("measured"), _config(1.0)
    for current, asked in ((measured, fixed), (fixed, measured)):
        merged = combined(current, asked, measured=0.1)
        assert merged is not None
        assert merged.margin is None  # still measured: a stall still raises J at once
        assert merged.floor == 1.0  # but never below the fixed J asked
        assert merged.margin_at(0.1) == 1.0
        assert merged.margin_at(2.5) == 2.5
        assert combined(merged, asked, measured=0.1) is None  # asked again: no change


def test_the_slower_quota_wins_between_a_fixed_and_a_measured_margin() -> None:
    merged = combined(_config("measured"), _config(0.5, Quota(10, 60.0)), measured=1.0)
    assert merged is not None
    assert (merged.quota, merged.margin, merged.floor) == (Quota(10, 60.0), None, 0.5)
    # Two fixed margins: the slower one, as before.
    assert combined(_config(1.0), _config(0.5), measured=0.1) is None
    assert combined(_config(0.5), _config(1.0), measured=0.1) == _config(1.0)


def test_a_default_session_beside_one_with_a_fixed_second_never_paces_below_it() -> None:
    """Before the measured default, both sessions asked J = 1 s; the explicit one is still honoured."""
    registry = MemoryLimiterRegistry()

    async def main() -> list[float]:
        default = registry.get("m-1", RouteGroup.CANCEL_ITEM, Q60)
        fixed = registry.get("m-1", RouteGroup.CANCEL_ITEM, Q60, latency_margin=1.0)
        assert fixed is default
        assert isinstance(default, MemoryLimiter)
        times: list[float] = []
        for _ in range(300):
            await default.acquire()
            times.append(asyncio.get_running_loop().time())
            default.observe_wire(0.003)  # a quick network: alone, J would come down to 0.1 s
        default.observe_wire(2.503)  # and it still grows at once on a stall
        assert default.latency_margin == pytest.approx(2.5)
        return times

    assert gaps(run_virtual(main())) == pytest.approx([interval(60, 1.0)] * 299)


def test_the_warning_says_a_fixed_margin_became_the_floor(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="assetpay_async.limiter")
    registry = MemoryLimiterRegistry()
    registry.get("m-1", RouteGroup.CANCEL_ITEM, Q60)
    registry.get("m-1", RouteGroup.CANCEL_ITEM, Q60, latency_margin=1.0)
    [record] = caplog.records
    assert "keeping the slower one (measuring J, never below 1s)" in record.getMessage()
