"""Following with the merchant scope: a round of followed trades read 100 a request.

When the session has an API key, the shared poller reads the trades it follows through
``GET /secure/trades/{refs}`` (up to 100 refs a request, the merchant read quota) instead of one request per
trade or a scan per user in the client scope. Whether that route returns the merchant's *clients'* trades is
UNCONFIRMED (the spec says yes, one docs page says no), so a [`BatchRoute`][assetpay_async._merchant_follow.BatchRoute]
works under both readings and remembers, for the session's life, what the route has shown:

* a ref the route answered without (its trade absent from a successful answer) is read in the client scope
  from then on, never asked of the route again;
* a successful answer that held none of the clients' trades asked for, before the route ever returned one,
  means the route does not serve clients' trades: the session stops using it for following;
* a definite refusal of the route (the API key refused or out of scope, the route missing, a validation error)
  stops its use too; a transient failure (connection, 5xx, 429, queue timeout, a body that is not an
  envelope) sends that request's refs to the client scope for this round only.

Either way every followed item is still read: what the route did not return goes to the client scope's
reader in the same round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from . import _merchant_proto as mp
from ._errors import (
    InvalidResponseError,
    QueueTimeoutError,
    RateLimitedError,
    ServerError,
    SessionClosedError,
    TradeNotFoundError,
    TransportError,
)
from ._models import Trade, TradeSource

__all__ = ["BatchReader", "BatchRoute"]

logger = logging.getLogger("assetpay_async._merchant_follow")

_TRANSIENT: Final = (
    TransportError,
    ServerError,
    RateLimitedError,
    QueueTimeoutError,
    InvalidResponseError,
    SessionClosedError,
)


class BatchReader(Protocol):
    """What the follower needs of ``session.merchant``: a [`MerchantScope`][assetpay_async.MerchantScope]."""

    @property
    def merchant_id(self) -> str | None:
        """The merchant of the API key (None until known)."""
        ...

    async def _read_chunk(self, chunk: list[str]) -> dict[str, Trade]:
        """One ``GET /secure/trades/{refs}`` of 1 to 100 refs: each ref that resolved, to its trade."""
        ...


class BatchRoute:
    """The session's use of ``GET /secure/trades/{refs}`` for following, and what it has learnt of it.

    Args:
        scope: the session's merchant scope.
    """

    def __init__(self, scope: BatchReader) -> None:
        self._scope = scope
        self._unserved: set[str] = set()
        self.serves_clients: bool | None = None
        """True once the route returned a client's trade; False once it answered without any (the stricter
        reading): then it is no longer used for following."""
        self.refused: BaseException | None = None
        """The definite refusal that ended the route's use for following, if any."""
        self.requests = 0
        """Requests sent to the route for following (for tests and benchmarks)."""

    def serves(self, merchant_id: str, ref: str) -> bool:
        """Whether the poller of ``merchant_id`` should ask the route for ``ref`` (else: the client scope)."""
        return (
            self.refused is None
            and self.serves_clients is not False
            and self._scope.merchant_id == merchant_id
            and ref not in self._unserved
            and "," not in ref  # the route separates refs by raw commas
        )

    async def read(
        self,
        refs: Sequence[str],
        on_read: Callable[[str, Trade], None],
        *,
        pace: Callable[[], Awaitable[None]],
    ) -> None:
        """Read ``refs`` 100 a request, telling ``on_read`` each trade the route returned (once per ref).

        Refs not told are for the client scope: the route answered without them, failed, or is no longer
        used. While the route's reading is unknown, requests go one at a time and stop at the first that
        shows it; then the rest go at once. ``pace`` is awaited before each request. Never raises but for
        cancellation.
        """
        todo = mp.chunks(list(dict.fromkeys(refs)))
        while todo and self.serves_clients is None and self.refused is None:
            await self._read_one(todo.pop(0), on_read, pace)
        if todo and self.serves_clients and self.refused is None:
            async with asyncio.TaskGroup() as group:
                for chunk in todo:
                    group.create_task(self._read_one(chunk, on_read, pace))

    async def _read_one(
        self,
        chunk: list[str],
        on_read: Callable[[str, Trade], None],
        pace: Callable[[], Awaitable[None]],
    ) -> None:
        await pace()
        if self.refused is not None or self.serves_clients is False:
            return  # learnt while this request waited for its turn
        self.requests += 1
        try:
            found = await self._scope._read_chunk(chunk)
        except TradeNotFoundError:
            found = {}  # a 404 for several refs: none resolved
        except _TRANSIENT as exc:
            logger.debug("GET /secure/trades/{refs} failed, reading in the client scope: %s", exc)
            return
        except Exception as exc:  # a definite refusal: the client scope reads from now on
            logger.warning(
                "GET /secure/trades/{refs} refused (%s): following reads in the client scope", exc
            )
            self.refused = exc
            return
        self._learn(chunk, found)
        for ref, trade in found.items():
            on_read(ref, trade)

    def _learn(self, chunk: list[str], found: dict[str, Trade]) -> None:
        missing = [ref for ref in chunk if ref not in found]
        if any(trade.source != TradeSource.SELF for trade in found.values()):
            self.serves_clients = True
        elif missing and self.serves_clients is None:
            self.serves_clients = False
            logger.info(
                "GET /secure/trades/{refs} returned none of the clients' trades asked for: "
                "following reads them in the client scope for this session"
            )
        self._unserved.update(missing)
