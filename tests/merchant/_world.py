"""Helpers of the merchant-mode tests: a sandbox merchant and a session in merchant mode talking to it."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from assetpay_async import AssetPaySession, Quota
from assetpay_async.sandbox import Merchant, Sandbox, SandboxBehavior, User

FAST_CANCEL = Quota(60, 3.0)
HOUR = dt.timedelta(hours=1)
API_KEY = "ap_live_7f3a9c1e5b2d4a6f8e0c"
API_SECRET = "sk_merchant_secret_do_not_leak_91c2"
STEAM_ID = "76561198000000042"
TRADE_URL = "https://steamcommunity.com/tradeoffer/new/?partner=39734314&token=Ab3_xY-9"


@attrs.frozen
class MerchantWorld:
    sandbox: Sandbox
    merchant: Merchant
    user: User
    session: AssetPaySession


@asynccontextmanager
async def merchant_world(
    *,
    secret: bool = True,
    merchant_id: bool = True,
    behavior: SandboxBehavior | None = None,
    quota: Quota = FAST_CANCEL,
    **session_options: Any,
) -> AsyncIterator[MerchantWorld]:
    """A started sandbox with one verified merchant (known API key and secret), one user and a session in
    merchant mode (with or without the secret and the merchant id)."""
    async with Sandbox(seed=7, behavior=behavior) as sandbox:
        merchant = sandbox.add_merchant(
            "verified",
            quotas={"cancel-item": quota},
            merchant_id=f"m-{uuid.uuid4().hex[:12]}",  # a limiter of its own in the registry
            secret=API_SECRET,
            api_key=API_KEY,
        )
        user = sandbox.add_user(merchant, steam_id=STEAM_ID, trade_url=TRADE_URL)
        options: dict[str, Any] = {
            "tier": "verified",
            "cancel_quota": quota,
            "base_url": sandbox.base_url,
            "latency_margin": 0.1,
            "wall_clock": sandbox.clock.wall,
            "api_key": API_KEY,
            "api_secret": API_SECRET if secret else None,
            "merchant_id": merchant.id if merchant_id else None,
        }
        options.update(session_options)
        async with AssetPaySession(**options) as session:
            yield MerchantWorld(sandbox, merchant, user, session)


def auth_requests(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.path == "/auth/authenticate-client")
