"""Helpers of the evidence tests: a sandbox world with one trade, mixed batches, and the request log per call."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from assetpay_async import AssetPayClient, AssetPaySession, CancelOutcome, OutcomeKind, Quota
from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Merchant, Sandbox, SandboxTrade, User

HOUR = dt.timedelta(hours=1)
FAST_CANCEL = Quota(60, 3.0)
"""The verified quota scaled down to 60 cancels per 3 s, so paced batches finish in a few virtual seconds."""

ESCAPING_ID = ".."
"""A trade ref that would leave the cancel route (a dot segment); a batch must refuse it without sending
anything. (Other path-like text is a legal externalId, sent as one encoded segment.)"""


@attrs.frozen
class World:
    sandbox: Sandbox
    merchant: Merchant
    user: User
    trade: SandboxTrade
    session: AssetPaySession
    client: AssetPayClient


@asynccontextmanager
async def world(items: int = 3, quota: Quota = FAST_CANCEL, **session: Any) -> AsyncIterator[World]:
    """A started sandbox, one verified merchant, one user with one cancellable trade, and an SDK client.

    ``session`` holds extra :class:`AssetPaySession` options (``timeout``, ``retry``, ...).
    """
    async with Sandbox(seed=1) as sandbox:
        merchant = sandbox.add_merchant("verified", quotas={"cancel-item": quota})
        user = sandbox.add_user(merchant)
        trade = sandbox.add_trade(user, items=items, age=HOUR)
        session.setdefault("latency_margin", 0.1)
        async with AssetPaySession(cancel_quota=quota, base_url=sandbox.base_url, **session) as api:
            yield World(sandbox, merchant, user, trade, api, api.client(sandbox.token(user)))


def mixed_pairs(trade: SandboxTrade) -> list[tuple[object, object]]:
    """Every item of ``trade``, with a path-escaping id second and a duplicate of the first item last."""
    pairs: list[tuple[object, object]] = [(trade.id, item.id) for item in trade.items]
    pairs.insert(1, (ESCAPING_ID, trade.items[0].id))
    pairs.append((trade.id, trade.items[0].id))
    return pairs


def valid_outcomes(outcomes: list[CancelOutcome]) -> list[CancelOutcome]:
    """The outcomes of the trade's own items, in order (without the escaping pair and the duplicate)."""
    return [o for o in outcomes if o.trade_id != ESCAPING_ID and o.duplicate_of is None]


def attempts_per_request_id(sandbox: Sandbox) -> collections.Counter[str | None]:
    """How many cancel requests the sandbox received per ``X-Request-Id`` (one id per SDK call)."""
    return collections.Counter(
        record.request_id for record in sandbox.requests if record.group is RouteGroup.CANCEL_ITEM
    )


def request_id_of(outcome: CancelOutcome) -> str | None:
    """The request id an outcome carries: the result's on success, the error's otherwise."""
    if outcome.result is not None:
        return outcome.result.request_id
    return getattr(outcome.error, "request_id", None)


def acted_on(trade: SandboxTrade) -> list[bool]:
    """Per item: whether the sandbox accepted a cancel of it (pending revert or reverted)."""
    return [item.cancel_pending or item.status == "reverted" for item in trade.items]


def kinds(outcomes: list[CancelOutcome]) -> list[OutcomeKind]:
    return [outcome.kind for outcome in outcomes]
