"""Helpers of the sandbox tests: a world with one merchant, one user and a session talking to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs

from assetpay_async import AssetPaySession, Quota
from assetpay_async.sandbox import Merchant, Sandbox, User
from assetpay_async.testing import run_virtual

T = TypeVar("T")

FAST_CANCEL = Quota(60, 3.0)
"""A scaled-down verified quota: 60 cancels per 3 s keeps virtual-time tests short."""


@attrs.frozen
class World:
    sandbox: Sandbox
    merchant: Merchant
    user: User
    session: AssetPaySession
    token: str


@asynccontextmanager
async def world(
    quota: Quota = FAST_CANCEL, *, callback_url: str | None = None, **options: Any
) -> AsyncIterator[World]:
    """A started sandbox, one verified merchant with ``quota`` for cancels, one user, an SDK session."""
    options.setdefault("seed", 1)
    async with Sandbox(**options) as sandbox:
        merchant = sandbox.add_merchant(
            "verified",
            quotas={"cancel-item": quota},
            callback_url=callback_url,
        )
        user = sandbox.add_user(merchant)
        async with AssetPaySession(
            cancel_quota=quota, base_url=sandbox.base_url, latency_margin=0.1
        ) as session:
            yield World(sandbox, merchant, user, session, sandbox.token(user))


def virtual(test: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on virtual time."""

    async def main() -> T:
        return await test()

    return run_virtual(main())
