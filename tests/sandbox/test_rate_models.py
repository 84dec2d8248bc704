"""Each server model refuses exactly what its algorithm should: tables of hit times -> allowed/refused.

Quota for every table: 3 requests per 10 s.
"""

from __future__ import annotations

import pytest

from assetpay_async import Quota
from assetpay_async.sandbox import (
    GCRA,
    AnchoredWindow,
    BlockPenaltyWindow,
    FixedWindow,
    RateModel,
    ServerAlgorithm,
    SlidingLog,
    SlidingWindowCounter,
    make_rate_model,
)

Q = Quota(3, 10.0)
Y, N = True, False


def replay(model: RateModel, hits: list[tuple[float, bool]]) -> None:
    got = [(t, model.hit(t).allowed) for t, _ in hits]
    assert got == hits


def test_fixed_window_resets_on_aligned_boundaries_and_lets_a_straddling_burst_through() -> None:
    replay(
        FixedWindow(Q),
        [(0, Y), (1, Y), (2, Y), (3, N), (9.99, N), (10, Y), (10, Y), (10, Y), (10.5, N)],
    )
    # 3 just before the boundary and 3 just after: 6 within 0.3 s.
    replay(
        FixedWindow(Q),
        [(19.8, Y), (19.9, Y), (19.95, Y), (20.0, Y), (20.05, Y), (20.1, Y), (20.2, N)],
    )


def test_fixed_window_retry_after_is_the_window_end() -> None:
    model = FixedWindow(Q)
    for t in (11, 12, 13):
        model.hit(t)
    assert model.hit(14).retry_after == pytest.approx(6.0)


def test_anchored_window_opens_at_the_first_hit() -> None:
    model = AnchoredWindow(Q)
    replay(
        model, [(5, Y), (6, Y), (7, Y), (8, N), (14.99, N), (15, Y), (15.5, Y), (16, Y), (24.9, N)]
    )


def test_anchored_window_retry_after_counts_from_the_anchor() -> None:
    model = AnchoredWindow(Q)
    for t in (5, 6, 7):
        model.hit(t)
    assert model.hit(8).retry_after == pytest.approx(7.0)


def test_block_penalty_blocks_a_whole_window_after_one_over_limit_hit() -> None:
    model = BlockPenaltyWindow(Q)
    # An anchored window alone would allow the hit at 10; the block lasts until 3 + 10 = 13.
    replay(
        model,
        [
            (0, Y),
            (1, Y),
            (2, Y),
            (3, N),
            (10, N),
            (12.99, N),
            (13, Y),
            (13.1, Y),
            (13.2, Y),
            (13.3, N),
        ],
    )


def test_block_penalty_retry_after_is_the_block_end() -> None:
    model = BlockPenaltyWindow(Q, block=30.0)
    for t in (0, 1, 2):
        model.hit(t)
    assert model.hit(3).retry_after == pytest.approx(30.0)
    assert model.hit(20).retry_after == pytest.approx(13.0)


def test_sliding_log_counts_the_inclusive_edge_and_not_refused_hits() -> None:
    model = SlidingLog(Q)
    replay(
        model,
        [
            (0, Y), (1, Y), (2, Y),
            (9.99, N),  # refused, and not logged
            (10, N),  # the hit at 0 is exactly 10 s old: still inside [now - T, now]
            (10.001, Y),
            (11, N),  # the hit at 1 is exactly 10 s old
            (11.001, Y),
        ],
    )  # fmt: skip


def test_sliding_log_retry_after_is_when_the_oldest_counted_hit_leaves() -> None:
    model = SlidingLog(Q)
    for t in (0, 4, 5):
        model.hit(t)
    assert model.hit(6).retry_after == pytest.approx(4.0)


def test_sliding_counter_weighs_the_previous_window() -> None:
    model = SlidingWindowCounter(Q)
    # At 13.3: 3 * (1 - 0.33) + 0 + 1 = 3.01 > 3; at 13.34: 2.98 + 1 <= 3.
    replay(model, [(0, Y), (1, Y), (2, Y), (10, N), (13.3, N), (13.34, Y), (13.5, N), (20, Y)])


def test_sliding_counter_forgets_after_two_windows() -> None:
    replay(SlidingWindowCounter(Q), [(0, Y), (1, Y), (2, Y), (20, Y), (20, Y), (20, Y), (20, N)])


def test_sliding_counter_retry_after_lands_on_the_first_allowed_moment() -> None:
    model = SlidingWindowCounter(Q)
    for t in (0, 1, 2):
        model.hit(t)
    wait = model.hit(10).retry_after
    assert wait == pytest.approx(10 / 3)
    assert not model.hit(10 + wait - 0.01).allowed
    assert model.hit(10 + wait + 1e-9).allowed


def test_gcra_with_burst_n_is_a_token_bucket() -> None:
    model = GCRA(Q)  # emission interval 10/3 s, burst 3
    replay(model, [(0, Y), (0, Y), (0, Y), (0, N), (3.3, N), (3.34, Y), (3.4, N), (6.67, Y)])


def test_gcra_with_burst_one_refuses_any_two_hits_closer_than_t_over_n() -> None:
    model = GCRA(Q, burst=1)
    replay(model, [(0, Y), (3.3, N), (3.34, Y), (6.0, N), (6.68, Y), (100, Y), (100.1, N)])


def test_gcra_retry_after() -> None:
    model = GCRA(Q, burst=1)
    model.hit(0)
    assert model.hit(1).retry_after == pytest.approx(10 / 3 - 1)


@pytest.mark.parametrize("algorithm", list(ServerAlgorithm))
def test_every_model_allows_n_spread_hits_and_refuses_a_burst_of_n_plus_one(
    algorithm: ServerAlgorithm,
) -> None:
    burst = make_rate_model(algorithm, Q)
    decisions = [burst.hit(100.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [Y, Y, Y, N]
    assert decisions[-1].retry_after > 0
    spread = make_rate_model(algorithm, Q)
    # Even spacing of (T + 1) / (N - 1) never draws a refusal from any of them.
    assert all(spread.hit(i * 5.5).allowed for i in range(50))


def test_unknown_algorithm_is_refused() -> None:
    with pytest.raises(ValueError, match="leaky"):
        make_rate_model("leaky-bucket", Q)
    with pytest.raises(ValueError, match="burst"):
        GCRA(Q, burst=0)
