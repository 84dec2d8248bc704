"""Merchant mode: the session's API key and secret serve every end user and the merchant scope.

[`MerchantAuth`][assetpay_async._merchant.MerchantAuth] issues client tokens (minted locally with the API
secret, or through ``POST /auth/authenticate-client``) and caches one
[`UserTokenSource`][assetpay_async._token_source.UserTokenSource] per end user.
[`MerchantClient`][assetpay_async._merchant.MerchantClient] is the client ``session.client_for`` returns;
[`MerchantScope`][assetpay_async.MerchantScope] is ``session.merchant``: reads and cancels with the API key.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Final, TypeVar

from . import _merchant_proto as mp
from . import _protocol as proto
from ._client import AssetPayClient
from ._errors import (
    InvalidRequestError,
    TradeNotFoundError,
)
from ._listing import ListingScan, walk
from ._minting import ApiKey, ApiSecret, EndUser, mint
from ._models import CancelResult, Game, Trade, TradeCancelResult, TradePage, TradeType
from ._poller import FollowedItem
from ._refs import names
from ._token_source import UserTokenSource
from ._tokens import SecretToken, token_merchant

if TYPE_CHECKING:
    from ._interfaces import SessionView
    from ._transport import Requester

__all__ = ["DEFAULT_MAX_PAGES", "MerchantAuth", "MerchantClient", "MerchantScope"]

T = TypeVar("T")

DEFAULT_MAX_PAGES: Final = 10_000
"""The most pages one ``MerchantScope.iter_trades`` scan reads per game before it gives up."""


class MerchantAuth:
    """Issues end users' client tokens for one session, and knows the merchant id once it is known.

    Args:
        requester: the session's request path.
        api_key: the merchant's API key.
        api_secret: the API secret (None: every token comes from ``/auth/authenticate-client``).
        merchant_id: the merchant id, if the session was given one.
        unix_now: the current Unix time.
        on_merchant: told the merchant id when a token issued by AssetPay reveals it.
    """

    def __init__(
        self,
        requester: Requester,
        api_key: ApiKey,
        *,
        api_secret: ApiSecret | None,
        merchant_id: str | None,
        unix_now: Callable[[], float],
        on_merchant: Callable[[str], None],
    ) -> None:
        self._requester = requester
        self.api_key = api_key
        self._secret = api_secret
        self.merchant_id = merchant_id
        self._unix_now = unix_now
        self._on_merchant = on_merchant
        self._sources: dict[EndUser, UserTokenSource] = {}
        self.issued_locally = 0
        self.issued_remotely = 0
        self._learning = asyncio.Lock()

    def source_for(self, user: EndUser) -> UserTokenSource:
        """The token source of ``user`` (one per distinct claims, kept for the session's life)."""
        source = self._sources.get(user)
        if source is None:
            source = self._sources[user] = UserTokenSource(user, self.issue, self._unix_now)
        return source

    def limiter_key(self) -> str:
        """The merchant id, or ``api-key:<fingerprint>`` while it is unknown (auth calls only)."""
        return self.merchant_id or f"api-key:{self.api_key.fingerprint}"

    async def issue(self, user: EndUser, issued_at: int) -> SecretToken:
        """A new token for ``user``: minted locally when the secret and merchant id are known, else asked of
        ``POST /auth/authenticate-client`` (through the auth quota).

        Raises:
            MerchantMismatchError: AssetPay issued a token of another merchant than the session's.
            InvalidRequestError: the issued token is opaque and the session has no ``merchant_id``.
        """
        if self._secret is not None and self.merchant_id is None:
            # The first issuance learns the merchant id; concurrent first callers wait for it and mint.
            async with self._learning:
                if self.merchant_id is None:
                    return await self._issue_remotely(user)
        if self._secret is not None and self.merchant_id is not None:
            self.issued_locally += 1
            return mint(self._secret, self.merchant_id, user, issued_at=issued_at)
        return await self._issue_remotely(user)

    async def _issue_remotely(self, user: EndUser) -> SecretToken:
        call = mp.authenticate_call(user)
        token = await self._requester.call(self.api_key, self.limiter_key(), call.spec, call.decode)
        self.issued_remotely += 1
        merchant = token_merchant(token, self.merchant_id, what="AssetPay issued token")
        if self.merchant_id is None:
            self.merchant_id = merchant
            self._on_merchant(merchant)
        return token

    def known_merchant(self) -> str:
        """The merchant id, for calls that spend the merchant's quota.

        Raises:
            InvalidRequestError: not known yet (no ``merchant_id=`` and no token issued so far).
        """
        if self.merchant_id is None:
            raise InvalidRequestError(
                "the merchant id is not known yet: pass merchant_id= to AssetPaySession, or make a "
                "call with a client of session.client_for(...) first"
            )
        return self.merchant_id


def _user_fingerprint(user: EndUser) -> str:
    key = "\x1f".join((user.steam_id, user.trade_url, user.client_id or "", user.client_data or ""))
    return "user:" + hashlib.sha256(key.encode()).hexdigest()[:8]


class MerchantClient(AssetPayClient):
    """A client of one end user whose token the session issues, caches and renews.

    Each call asks the user's token source for a token valid now. When AssetPay answers INVALID_TOKEN
    (or TOKEN_EXPIRED / TOKEN_INVALID_OR_EXPIRED), the token is re-issued once and the call replayed once;
    a second refusal raises the [`AuthenticationError`][assetpay_async.AuthenticationError].
    """

    __slots__ = ("_auth", "_source")

    def __init__(
        self,
        session: SessionView,
        requester: Requester,
        auth: MerchantAuth,
        source: UserTokenSource,
    ) -> None:
        super().__init__(session, requester, source, auth.merchant_id or "")
        self._auth = auth
        self._source = source

    @property
    def merchant_id(self) -> str:
        return self._auth.known_merchant()

    @property
    def token_fingerprint(self) -> str:
        """A short hash of the end user's claims (stable across renewals), safe to log and to key by."""
        return _user_fingerprint(self._source.user)

    @property
    def steam_id(self) -> str:
        """The end user's Steam id."""
        return self._source.user.steam_id

    def __repr__(self) -> str:
        return (
            f"<AssetPayClient merchant={self._auth.merchant_id!r} steam_id={self.steam_id} "
            f"token={self._source.fingerprint}>"
        )

    async def _send(
        self,
        call: proto.Call[T],
        *,
        max_queue_wait: float | None = None,
        on_send: Callable[[], None] | None = None,
    ) -> T:
        # The requester asks the source for a token right before each attempt and, on INVALID_TOKEN,
        # re-issues it and replays the attempt once within the same grant.
        await self._learn_merchant()
        return await super()._send(call, max_queue_wait=max_queue_wait, on_send=on_send)

    async def _learn_merchant(self) -> None:
        """The merchant whose quota the calls spend, from the user's first token when not known yet."""
        if self._auth.merchant_id is None:
            await self._source.current()
        self._merchant_id = self._auth.known_merchant()

    async def wait_for_items(
        self,
        pairs: Iterable[tuple[uuid.UUID | str, uuid.UUID | str]],
        *,
        timeout: float = 900.0,
        first_poll: float = 1.0,
        max_interval: float = 15.0,
    ) -> list[FollowedItem]:
        """As [`AssetPayClient.wait_for_items`][assetpay_async.AssetPayClient.wait_for_items]; the merchant
        id is learnt from the user's first token if the session does not know it yet."""
        await self._learn_merchant()
        return await super().wait_for_items(
            pairs, timeout=timeout, first_poll=first_poll, max_interval=max_interval
        )


class MerchantScope:
    """``session.merchant``: the merchant scope (``api-key``) of AssetPay, for the merchant's own trades.

    Reads go through the merchant read quota (3,000 a minute verified, 100 unverified); cancels through the
    item-cancel quota, assumed shared with the client scope's cancels (AssetPay does not say).
    """

    def __init__(self, requester: Requester, auth: MerchantAuth) -> None:
        self._requester = requester
        self._auth = auth

    def __repr__(self) -> str:
        return f"<MerchantScope merchant={self._auth.merchant_id!r} key={self._auth.api_key!r}>"

    async def _send(self, call: proto.Call[T], max_queue_wait: float | None = None) -> T:
        """Run one call object of ``_merchant_proto`` with the API key, on the merchant's quota."""
        return await self._requester.call(
            self._auth.api_key,
            self._auth.known_merchant(),
            call.spec,
            call.decode,
            max_queue_wait=max_queue_wait,
        )

    async def get_trades(self, refs: Iterable[uuid.UUID | str]) -> list[Trade]:
        """The trades ``refs`` name (ids or externalIds), through ``GET /secure/trades/{refs}``.

        Up to 100 refs a request (250 refs: 3 requests); each ref percent-encoded. Refs AssetPay does not
        resolve are left out (one ref alone answers 404, which is left out too). Duplicates are read once.
        Whether the merchant's clients' trades are returned is UNCONFIRMED: see ``docs/merchant.md``.

        Raises:
            InvalidRequestError: a bad ref or one holding a comma (naming its position), before anything is
                sent; or the merchant id is not known yet.
        """
        return list((await self.resolve(refs)).values())

    async def resolve(self, refs: Iterable[uuid.UUID | str]) -> dict[str, Trade]:
        """Each ref that resolved, mapped to its trade (refs as checked; unresolved ones absent).

        The reader the merchant-scope follower needs: a ref missing from the answer is one the batch route
        does not return (perhaps a client's trade under the stricter reading): read it in the client scope.
        """
        wanted = mp.unique_refs(refs)
        self._auth.known_merchant()
        found: dict[str, Trade] = {}
        for chunk in mp.chunks(wanted):
            found.update(await self._read_chunk(chunk))
        return found

    @property
    def merchant_id(self) -> str | None:
        """The merchant whose API key this is (None until known)."""
        return self._auth.merchant_id

    async def _read_chunk(self, chunk: list[str]) -> dict[str, Trade]:
        """One ``GET /secure/trades/{refs}`` of 1 to 100 checked refs (no comma): each ref that resolved,
        mapped to its trade. One ref that AssetPay answers with 404 is an empty answer."""
        try:
            trades = await self._send(mp.secure_refs_call(chunk))
        except TradeNotFoundError:
            if len(chunk) == 1:
                return {}  # one ref: AssetPay answers 404 instead of an empty array
            raise
        if len(chunk) == 1:
            return {chunk[0]: trades[0]} if trades else {}
        return {ref: match for ref in chunk if (match := _named(trades, ref)) is not None}

    async def list_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str = Game.CS2,
        cursor: str | None = None,
        limit: int = 100,
    ) -> TradePage:
        """One page of ``GET /secure/trades`` (the merchant's own trades), newest first."""
        return await self._send(
            mp.secure_list_call(cursor=cursor, limit=limit, type=type, game=game)
        )

    async def iter_trades(
        self,
        *,
        type: TradeType | str | None = None,
        game: Game | str = Game.CS2,
        page_size: int = 100,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> AsyncIterator[Trade]:
        """Every own trade of the merchant for one game, newest first, page by page.

        The scan ends on a missing or empty cursor, or the cursor just sent (as the official client does);
        the listing's bookkeeping is the client scope's (``_listing.ListingScan``).

        Raises:
            InvalidRequestError: bad filters or ``max_pages``, before the first request.
            ListingDidNotTerminateError: the listing does not end: a cursor came back (A -> B -> A), pages
                in a row showed only trades already listed, or still not at the end after ``max_pages``
                pages; the trades read so far have been yielded.
        """
        if isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 1:
            raise InvalidRequestError("max_pages must be an int >= 1")
        kind = None if type is None else str(type)
        mp.secure_list_call(limit=page_size, type=kind, game=str(game))  # bad filters fail now
        scan = ListingScan(str(game), route="GET /secure/trades", max_pages=max_pages)

        async def page_at(cursor: str | None) -> TradePage:
            return await self.list_trades(type=kind, game=game, cursor=cursor, limit=page_size)

        async for trade in walk(scan, page_at):
            yield trade

    async def cancel_buy_item(
        self,
        trade_id: uuid.UUID | str,
        item_id: uuid.UUID | str,
        *,
        max_queue_wait: float | None = None,
    ) -> CancelResult:
        """Cancel one item of the merchant's own buy: ``POST /secure/buy/{tradeId}/items/{itemId}/cancel``.

        Same result, errors and ambiguity rules as
        [`AssetPayClient.cancel_withdrawal_item`][assetpay_async.AssetPayClient.cancel_withdrawal_item];
        paced by the item-cancel quota, assumed shared with the client scope.
        """
        return await self._send(mp.buy_cancel_item_call(trade_id, item_id), max_queue_wait)

    async def cancel_buy(
        self, trade_id: uuid.UUID | str, *, max_queue_wait: float | None = None
    ) -> TradeCancelResult:
        """Cancel every undelivered item of the merchant's own buy: ``POST /secure/buy/{tradeId}/cancel``.

        Best effort like
        [`AssetPayClient.cancel_withdrawal_trade`][assetpay_async.AssetPayClient.cancel_withdrawal_trade];
        its quota is unpublished, so it draws on the item-cancel quota.
        """
        return await self._send(mp.buy_cancel_call(trade_id), max_queue_wait)


def _named(trades: list[Trade], ref: str) -> Trade | None:
    by_id = next((t for t in trades if names(ref, t.id, None) is True), None)
    return by_id or next((t for t in trades if names(ref, t.id, t.external_id) is True), None)
