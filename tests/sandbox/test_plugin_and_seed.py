"""The pytest fixture as a user of the package gets it, and JSON seeds for the command line."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from assetpay_async import AssetPaySession, CancelStatus, Quota
from assetpay_async.sandbox import Sandbox, ServerAlgorithm
from assetpay_async.sandbox import _tokens as tokens


async def test_the_fixture_gives_a_started_sandbox(assetpay_sandbox: Sandbox) -> None:
    merchant = assetpay_sandbox.add_merchant(quotas={"cancel-item": (60, 3.0)})
    user = assetpay_sandbox.add_user(merchant)
    trade = assetpay_sandbox.add_trade(user, age=dt.timedelta(hours=1))
    async with AssetPaySession(
        cancel_quota=Quota(60, 3.0), base_url=assetpay_sandbox.base_url
    ) as session:
        result = await session.client(assetpay_sandbox.token(user)).cancel_withdrawal_item(
            trade.id, trade.items[0].id
        )
    assert result.status is CancelStatus.CANCELLED
    assert assetpay_sandbox.totals(merchant).rate_limited == 0


@pytest.mark.assetpay_sandbox(algorithm="gcra", burst=2)
async def test_the_marker_configures_the_fixture(assetpay_sandbox: Sandbox) -> None:
    assert assetpay_sandbox.algorithm is ServerAlgorithm.GCRA
    assert assetpay_sandbox.burst == 2


SEED = {
    "merchants": [
        {
            "id": "merchant-1",
            "secret": "s3cret",
            "tier": "unverified",
            "quotas": {"cancel-item": [10, 6]},
            "users": [
                {
                    "steam_id": "76561198000000042",
                    "trades": [{"game": "cs2", "items": 2, "age_minutes": 45}],
                },
                {"steam_id": "76561198000000043", "trades": [{"game": "rust", "type": "deposit"}]},
            ],
        }
    ]
}


async def test_from_seed_builds_the_world_and_lists_working_tokens() -> None:
    sandbox = Sandbox.from_seed(json.loads(json.dumps(SEED)), seed=3, port=0)
    async with sandbox:
        merchant = sandbox.merchants["merchant-1"]
        assert merchant.quota("cancel-item") == Quota(10, 6.0)  # type: ignore[arg-type]
        assert len(sandbox.trades) == 2
        seeded = sandbox.seeded_tokens()
        assert [s.steam_id for s in seeded] == ["76561198000000042", "76561198000000043"]
        claims = tokens.verify(seeded[0].token, lambda _: "s3cret", sandbox.clock.unix())
        assert isinstance(claims, tokens.TokenClaims)
        assert seeded[0].token not in repr(seeded[0])
