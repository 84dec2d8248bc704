"""The done-when batch: 2,000 pairs across 200 users, tokens minted on the fly, renewed mid-batch."""

from __future__ import annotations

import asyncio
import datetime as dt

from assetpay_async import CancelOutcome, Quota
from assetpay_async.sandbox import Sandbox, User

from ._world import merchant_world

USERS = 200
ITEMS = 10
QUOTA = Quota(600, 3.0)  # scaled down: 2,000 cancels in 10 virtual seconds of quota


async def _cancels_reach(sandbox: Sandbox, count: int) -> None:
    while sum(r.path.endswith("/cancel") for r in sandbox.requests) < count:  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def _expire_mid_batch(sandbox: Sandbox, users: list[User]) -> None:
    """Once a quarter of the cancels went through, refuse every token a fifth of the users hold (an early
    expiry: INVALID_TOKEN, so those calls are re-issued a token and replayed); once half went through, move
    past every token's ``exp`` (each source renews before it sends again)."""
    await _cancels_reach(sandbox, 500)
    for user in users[::5]:
        sandbox.expire_tokens(user)
    await _cancels_reach(sandbox, 1000)
    sandbox.advance(dt.timedelta(hours=24, minutes=1))


async def test_2000_pairs_across_200_users_with_tokens_minted_renewed_and_reissued_on_the_fly() -> (
    None
):
    async with merchant_world(quota=QUOTA, secret=True, merchant_id=False) as w:
        users = [w.user] + [w.sandbox.add_user(w.merchant) for _ in range(USERS - 1)]
        work = []
        for user in users:
            trade = w.sandbox.add_trade(user, age=dt.timedelta(hours=1), items=ITEMS)
            work.append((user, [(trade.id, item.id) for item in trade.items]))

        async def one_user(user: User, pairs: list[tuple[str, str]]) -> list[CancelOutcome]:
            client = w.session.client_for(user.steam_id, user.trade_url)
            return await client.cancel_withdrawal_items(pairs)

        chaos = asyncio.create_task(_expire_mid_batch(w.sandbox, users))
        results = await asyncio.gather(*(one_user(u, p) for u, p in work))
        await chaos

        outcomes = [o for per_user in results for o in per_user]
        assert len(outcomes) == USERS * ITEMS
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok][:3]
        cancels = [r for r in w.sandbox.requests if r.path.endswith("/cancel")]
        refused = [r for r in cancels if r.status == 401]
        assert sum(r.status == 200 for r in cancels) == USERS * ITEMS
        # Refusals happened (the early expiry), and at most one per pair left: a refused call was re-issued a
        # token and replayed once. The token is taken after the grant, so a pair queued across the move past
        # `exp` goes out with a renewed token rather than being refused.
        assert 0 < len(refused) <= USERS * ITEMS - 500
        assert {r.key for r in refused} <= {"TOKEN_EXPIRED", "INVALID_TOKEN"}
        assert w.sandbox.max_in_window(w.merchant) <= QUOTA.limit
        # One token came from AssetPay (it named the merchant); the rest were minted here: one per user,
        # and again for every user with pairs left after the expiry.
        auth = [r for r in w.sandbox.requests if r.path == "/auth/authenticate-client"]
        assert len(auth) == 1
        assert w.session._auth is not None
        assert w.session._auth.issued_locally > USERS
