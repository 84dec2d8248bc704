"""A sandbox world for the lifecycle tests: one merchant, two users, an SDK session on the sandbox's clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from assetpay_async import AssetPaySession, Quota
from assetpay_async.sandbox import Merchant, Sandbox, User

CANCELS = Quota(60, 3.0)
"""60 cancels per 3 s: the verified quota scaled down 20x, so batches take seconds of virtual time."""
READS = Quota(300, 3.0)


@attrs.frozen
class World:
    sandbox: Sandbox
    merchant: Merchant
    user: User
    other_user: User
    session: AssetPaySession
    token: str


@asynccontextmanager
async def lifecycle_world(**options: Any) -> AsyncIterator[World]:
    """A started sandbox and a session whose wall clock is the sandbox's (for the 30-minute rule)."""
    options.setdefault("seed", 7)
    async with Sandbox(**options) as sandbox:
        merchant = sandbox.add_merchant(
            "verified", quotas={"cancel-item": CANCELS, "trades-read": READS}
        )
        user, other = sandbox.add_user(merchant), sandbox.add_user(merchant)
        async with AssetPaySession(
            cancel_quota=CANCELS,
            trades_quota=READS,
            base_url=sandbox.base_url,
            latency_margin=0.05,
            wall_clock=sandbox.clock.wall,
        ) as session:
            yield World(sandbox, merchant, user, other, session, sandbox.token(user))
