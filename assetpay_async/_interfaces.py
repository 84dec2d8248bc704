"""The interfaces that let the modules of the request path depend in one direction only.

The session makes clients and a client makes batches, so ``_session`` imports ``_client`` and ``_client``
imports ``_batch`` and ``_poller``. The way back is typed by the protocols here instead of an import of the
module above: a client (and a poller) knows its session as a
[`SessionView`][assetpay_async._interfaces.SessionView] (which [`AssetPaySession`][assetpay_async.AssetPaySession]
is), a batch knows its client as a [`BatchCaller`][assetpay_async._interfaces.BatchCaller] and a poller as an
[`ItemReader`][assetpay_async._interfaces.ItemReader] (which [`AssetPayClient`][assetpay_async.AssetPayClient]
is). ``tests/core/test_core_imports.py`` keeps the
import graph free of cycles.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from ._limiter_types import LimiterStats
from ._models import Trade
from ._protocol import Call
from ._quota import Quota, RouteGroup
from ._tokens import SecretToken

__all__ = ["BatchCaller", "ItemReader", "SessionView", "TokenSource"]

T = TypeVar("T")


class SessionView(Protocol):
    """What a client shows of the session that made it: an [`AssetPaySession`][assetpay_async.AssetPaySession]."""

    @property
    def merchant_id(self) -> str | None:
        """The merchant the session serves."""
        ...

    @property
    def closed(self) -> bool:
        """Whether the session was closed."""
        ...

    @property
    def base_url(self) -> str:
        """AssetPay's API root the session calls."""
        ...

    @property
    def wall_clock(self) -> Callable[[], dt.datetime]:
        """The clock compared with AssetPay's timestamps."""
        ...

    def quota(self, group: RouteGroup | str) -> Quota:
        """The quota the session paces ``group`` to."""
        ...

    def limiter_stats(self, group: RouteGroup | str = ...) -> LimiterStats:
        """Counters of the merchant's limiter for ``group``."""
        ...

    async def aclose(self) -> None:
        """Close the session."""
        ...


class ItemReader(Protocol):
    """What a poller needs of a client: an [`AssetPayClient`][assetpay_async.AssetPayClient]."""

    @property
    def token_fingerprint(self) -> str:
        """A short hash of the client's token, safe to log and to key by."""
        ...

    async def get_trade(self, trade_id: uuid.UUID | str) -> Trade:
        """Read one trade."""
        ...

    async def _read_trades(
        self,
        refs: Sequence[str],
        on_read: Callable[[str, Trade | Exception], None],
        *,
        pace: Callable[[], Awaitable[None]] | None = None,
        singly: Collection[str] = (),
    ) -> set[str]:
        """Read a round of withdrawal trades (one list scan for all where it is cheaper, single reads for the
        rest), calling ``on_read`` once per distinct ref with its trade or error and awaiting ``pace`` before
        each request; returns the refs the scan did not reach (to be passed as ``singly`` next time)."""
        ...


class BatchCaller(ItemReader, Protocol):
    """What a batch needs of its client: an [`AssetPayClient`][assetpay_async.AssetPayClient]."""

    @property
    def merchant_id(self) -> str:
        """The merchant whose quota the client spends."""
        ...

    @property
    def session(self) -> SessionView:
        """The session of the client."""
        ...

    async def _send(
        self,
        call: Call[T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        """Run one call object (request and decoder) through the session's request path."""
        ...


@runtime_checkable
class TokenSource(Protocol):
    """Where a call's credential comes from when it is not one fixed token.

    [`Requester.call`][assetpay_async._transport.Requester.call] and
    [`AssetPayClient`][assetpay_async.AssetPayClient] take a ``SecretToken`` or a ``TokenSource``. With a
    source, the requester asks `current` right before each attempt goes on the wire (after the limiter's
    grant). When AssetPay answers INVALID_TOKEN (1102, or an expired token: 1110/1111) and the call has not
    been replayed yet, it asks `reissue` and, with a new token, sends again once within the same grant (no
    second grant, not counted as a retry). A second refusal raises the
    [`AuthenticationError`][assetpay_async.AuthenticationError] it got.
    """

    async def current(self) -> SecretToken:
        """A token valid now (a merchant-mode source mints or renews it here; one issuance shared)."""
        ...

    async def reissue(self, rejected: SecretToken) -> SecretToken | None:
        """After AssetPay refused ``rejected``: a new token, or None if none can be had (the call then raises
        the error it got)."""
        ...
