"""The backlog benchmark measures what it says, on virtual time, from the sandbox's own log."""

from __future__ import annotations

from assetpay_async import MerchantTier
from assetpay_async.testing import run_virtual
from bench.backlog import STRATEGIES, Strategy, measure, naive_gather, one_poller_per_item

SDK_PER_ITEM = STRATEGIES[0]


def test_the_sdk_per_item_strategy_clears_every_item_without_a_429() -> None:
    row = run_virtual(measure(SDK_PER_ITEM, MerchantTier.UNVERIFIED, 3, 5, revert_delay=30.0))

    assert row.items == 15
    assert row.accepted == 15
    assert row.final == 15
    assert row.cancel_requests == 15
    assert (row.cancel_429s, row.read_429s) == (0, 0)
    # 15 cancels at 10 a minute: the last cannot be accepted before 14 intervals of 6 s.
    assert row.accepted_at >= 14 * 6.0
    # The last item turns reverted 30 s after its cancel and is seen at the poll after that.
    assert row.final_at >= row.accepted_at + 30.0
    assert row.read_requests >= 15


def test_the_naive_baseline_draws_429s_and_still_gets_every_item_accepted() -> None:
    naive = Strategy("naive", naive_gather, one_poller_per_item, sdk=False)

    row = run_virtual(measure(naive, MerchantTier.UNVERIFIED, 4, 5, revert_delay=30.0))

    # AsyncLimiter(10, 60) lets its bucket of 10 out at once, then one every 6 s: the sliding log refuses some.
    assert row.cancel_429s > 0
    assert row.cancel_requests == 20 + row.cancel_429s
    assert row.accepted == 20
    assert row.final == 20
