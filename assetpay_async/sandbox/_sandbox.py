"""The Sandbox: AssetPay's withdrawal-cancel surface, stateful, on a real loopback socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

from assetpay_async._quota import MerchantTier, Quota, RouteGroup

from . import _tokens as tokens
from ._app import build_app, listen
from ._behavior import SandboxBehavior
from ._callbacks import CallbackAttempt, CallbackDispatcher
from ._clock import SandboxClock
from ._faults import FaultSchedule
from ._observe import RequestRecord, Totals, accepted_times, max_in_window, totals
from ._rate_models import RateModel, ServerAlgorithm, make_rate_model
from ._state import GameName, Merchant, SandboxTrade, User, render_trade
from ._world import SeededToken, as_quota, new_trade, new_user, populate, seconds

__all__ = ["Sandbox", "SeededToken"]

TOKEN_LIFETIME: Final = dt.timedelta(hours=24)


class Sandbox:
    """A stateful AssetPay emulator serving the cancel route and trade reads on a loopback socket.

    Example:
        >>> async with Sandbox(algorithm="sliding-log", seed=1) as sb:  # doctest: +SKIP
        ...     m = sb.add_merchant(tier="verified", quotas={"cancel-item": (60, 3.0)})
        ...     u = sb.add_user(m)
        ...     t = sb.add_trade(u, game="cs2", items=3, age=dt.timedelta(hours=1))
        ...     token = sb.token(u)  # AssetPaySession(base_url=sb.base_url, ...).client(token)

    Args:
        host: the address to listen on (loopback by default).
        port: the port; 0 picks a free one (see `base_url`).
        algorithm: the server's rate limiting algorithm (`ServerAlgorithm` or its name).
        burst: the GCRA burst B (default: the quota's N).
        seed: seeds ids, marketplace refusals and faults; None draws a fresh seed.
        start: the wall-clock datetime of sandbox time 0 (``createdAt``, token ``iat``/``exp``, callback ``t``);
            default: `DEFAULT_START` on a `VirtualTimeLoop`, the current time on any other loop.
        revert_delay: sandbox seconds between an accepted cancel and the item becoming ``reverted``.
        marketplace_refusal: the chance the marketplace refuses a cancel otherwise allowed (28).
        behavior: the answers to the unconfirmed points of the API.
        callback_attempts: attempts per callback delivery until a 2xx.
        callback_backoff: seconds before the second attempt, doubling after each failure.
        duplicate_callbacks: deliver every event twice with the same delivery id.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        algorithm: ServerAlgorithm | str = ServerAlgorithm.SLIDING_LOG,
        burst: int | None = None,
        seed: int | str | None = None,
        start: dt.datetime | None = None,
        revert_delay: dt.timedelta | float = 5.0,
        marketplace_refusal: float = 0.0,
        behavior: SandboxBehavior | None = None,
        callback_attempts: int = 5,
        callback_backoff: float = 1.0,
        duplicate_callbacks: bool = False,
    ) -> None:
        if not 0.0 <= marketplace_refusal <= 1.0:
            raise ValueError("marketplace_refusal must be within [0, 1]")
        self.host = host
        self.port = port
        self.algorithm = ServerAlgorithm(algorithm)
        self.burst = burst
        if self.algorithm is ServerAlgorithm.GCRA and burst is not None and burst < 1:
            raise ValueError("burst must be >= 1")
        self.revert_delay = seconds(revert_delay)
        self.marketplace_refusal = marketplace_refusal
        self.behavior = behavior or SandboxBehavior()
        self.clock = SandboxClock(start)
        base_seed = random.randrange(2**63) if seed is None else seed
        self._ids = random.Random(f"{base_seed}:ids")
        self._market = random.Random(f"{base_seed}:marketplace")
        self._request_ids = random.Random(f"{base_seed}:requests")
        self.faults = FaultSchedule(random.Random(f"{base_seed}:faults"))
        self.merchants: dict[str, Merchant] = {}
        self.users: dict[str, User] = {}
        self.trades: dict[str, SandboxTrade] = {}
        self._users_by_steam: dict[tuple[str, str], User] = {}
        self._models: dict[tuple[str, RouteGroup], RateModel] = {}
        self._requests: list[RequestRecord] = []
        self._revocations = tokens.Revocations()
        self.tokens_issued = 0
        """How many tokens ``POST /auth/authenticate-client`` issued."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._callbacks = CallbackDispatcher(
            self.clock,
            self._new_id,
            max_attempts=callback_attempts,
            backoff=callback_backoff,
            duplicate=duplicate_callbacks,
        )
        self._runner: web.AppRunner | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the clock to the running loop and start listening."""
        if self._runner is not None:
            raise RuntimeError("this Sandbox is already started")
        self.clock.bind(asyncio.get_running_loop())
        self._runner = await listen(build_app(self), self.host, self.port)
        self.port = int(self._runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop listening, cancel pending reverts and deliveries, close the callback client. Idempotent."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._callbacks.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running sandbox."""
        if self._runner is None:
            raise RuntimeError("the Sandbox is not started: use 'async with Sandbox(...)'")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "not started"
        return (
            f"<Sandbox {where} algorithm={self.algorithm.value} merchants={len(self.merchants)} "
            f"trades={len(self.trades)} now={self.clock.now():.3f}s>"
        )

    # -- the world ------------------------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def _new_request_id(self) -> str:
        return str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4))

    def add_merchant(
        self,
        tier: MerchantTier | str = MerchantTier.VERIFIED,
        *,
        quotas: Mapping[RouteGroup | str, Quota | tuple[int, float]] | None = None,
        callback_url: str | None = None,
        merchant_id: str | None = None,
        secret: str | None = None,
        previous_secret: str | None = None,
        api_key: str | None = None,
    ) -> Merchant:
        """Create a merchant.

        Args:
            tier: verified (60 cancels a minute) or unverified (10).
            quotas: per route group, a [`Quota`][assetpay_async.Quota] or ``(limit, period_seconds)``
                replacing the tier's.
            callback_url: where trade callbacks are posted.
            merchant_id: its id (default: a fresh UUID).
            secret: its API secret (default: a fresh random one).
            previous_secret: a secret being rotated out (callbacks then carry ``s1``).
            api_key: its API key for the merchant scope (default: a fresh ``ap_sandbox_...``).
        """
        merchant = Merchant(
            id=merchant_id or self._new_id(),
            secret=secret or f"sk_sandbox_{self._ids.getrandbits(128):032x}",
            tier=MerchantTier(tier),
            callback_url=callback_url,
            previous_secret=previous_secret,
            quotas={RouteGroup(g): as_quota(q) for g, q in (quotas or {}).items()},
            api_key=api_key or f"ap_sandbox_{self._ids.getrandbits(96):024x}",
        )
        if merchant.id in self.merchants:
            raise ValueError(f"merchant {merchant.id!r} exists already")
        self.merchants[merchant.id] = merchant
        return merchant

    def _merchant(self, merchant: Merchant | str) -> Merchant:
        return self.merchants[merchant if isinstance(merchant, str) else merchant.id]

    def add_user(
        self,
        merchant: Merchant | str,
        *,
        steam_id: str | None = None,
        trade_url: str | None = None,
    ) -> User:
        """Create an end user (Steam account) of ``merchant``."""
        user = new_user(self, self._merchant(merchant), steam_id, trade_url)
        self.users[user.id] = user
        self._users_by_steam[(user.merchant_id, user.steam_id)] = user
        return user

    def token(
        self,
        user: User,
        *,
        lifetime: dt.timedelta = TOKEN_LIFETIME,
        issued_at: dt.datetime | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Mint the user's client token: an HS256 JWT in AssetPay's shape, signed with the merchant's secret.

        Args:
            lifetime: ``exp - iat`` (AssetPay: 24 hours).
            issued_at: ``iat`` (default: the sandbox's wall time now).
            claims: more ``client`` claims (``clientId``, ``clientData``).
        """
        merchant = self._merchant(user.merchant_id)
        iat = int((issued_at or self.clock.wall()).timestamp())
        client = {"steamID": user.steam_id, "tradeUrl": user.trade_url, **(claims or {})}
        return tokens.client_token(
            merchant.id, merchant.secret, client, issued_at=iat, lifetime=lifetime.total_seconds()
        )

    def add_trade(
        self,
        user: User,
        *,
        game: GameName | str = GameName.CS2,
        items: int = 1,
        age: dt.timedelta | float = 0.0,
        type: str = "withdraw",
        status: str | None = None,
        item_status: str = "active",
        external_id: str | None = None,
        item_external_ids: bool | Iterable[str] = False,
        trade_id: str | None = None,
        item_ids: Iterable[str] | None = None,
        listing_ids: bool = False,
        source: str = "client",
    ) -> SandboxTrade:
        """Create a trade of ``user``, created ``age`` ago (the 30-minute rule reads the trade's age).

        Args:
            game: ``"cs2"`` (appid 730) or ``"rust"`` (252490).
            items: how many items.
            age: how long ago it was created (a timedelta or seconds).
            type: ``"withdraw"`` or ``"deposit"``.
            status: the trade's status (default ``active`` for withdrawals, ``completed`` for deposits).
            item_status: each withdrawal item's status (deposit items carry none).
            external_id: the merchant's id of the trade (a ref the API accepts in place of its id).
            item_external_ids: give each item an ``externalId`` (echoed by a successful cancel): True
                makes ``ext-<first 8 characters of the id>``; an iterable gives one per item.
            trade_id: its id (default: a fresh UUID). UUIDs are stored lowercase, other ids as given.
            item_ids: its items' ids (default: fresh UUIDs, or listing ids with ``listing_ids``).
            listing_ids: give the items marketplace listing ids such as ``0010f8d48278ccb8`` (16 hex
                digits, not UUIDs), as CS2 withdrawal items have.
            source: ``"client"`` (the user's trade) or ``"self"`` (the merchant's own buy, which the
                merchant scope's ``/secure/*`` routes read and cancel).
        """
        trade = new_trade(
            self,
            user,
            game=game,
            items=items,
            age=age,
            type=type,
            status=status,
            item_status=item_status,
            external_id=external_id,
            item_external_ids=item_external_ids,
            trade_id=trade_id,
            item_ids=item_ids,
            listing_ids=listing_ids,
            source=source,
        )
        if trade.id in self.trades:
            raise ValueError(f"trade {trade.id} exists already")
        self.trades[trade.id] = trade
        return trade

    def render(self, trade: SandboxTrade) -> dict[str, Any]:
        """The trade as AssetPay's JSON (what reads and callbacks carry)."""
        return render_trade(trade, self.clock.start)

    def advance(self, delta: dt.timedelta | float) -> None:
        """Move the sandbox clock forward: trades age, quota windows pass, due reverts and retries run."""
        self.clock.advance(delta)

    # -- observability --------------------------------------------------------------------------------

    @property
    def requests(self) -> tuple[RequestRecord, ...]:
        """Every request received, in arrival order (no headers, no token)."""
        return tuple(self._requests)

    @property
    def deliveries(self) -> tuple[CallbackAttempt, ...]:
        """Every callback attempt made, in order."""
        return tuple(self._callbacks.attempts)

    def totals(self, merchant: Merchant | str, group: RouteGroup | str | None = None) -> Totals:
        """Accepted, rate-limited and faulted request counts of ``merchant`` (in ``group``, if given)."""
        return totals(
            self._requests,
            self._merchant(merchant).id,
            None if group is None else RouteGroup(group),
        )

    def max_in_window(
        self,
        merchant: Merchant | str,
        group: RouteGroup | str = RouteGroup.CANCEL_ITEM,
        window: float | None = None,
    ) -> int:
        """The most requests the rate limiter let through in any closed window (default: the quota's period)."""
        owner, wanted = self._merchant(merchant), RouteGroup(group)
        window = owner.quota(wanted).period_seconds if window is None else window
        return max_in_window(accepted_times(self._requests, owner.id, wanted), window)

    def quota_share(
        self, merchant: Merchant | str, group: RouteGroup | str = RouteGroup.CANCEL_ITEM
    ) -> float:
        """``max_in_window / N``: how much of the quota the busiest window used (1.0 = all of it)."""
        owner = self._merchant(merchant)
        return self.max_in_window(owner, group) / owner.quota(RouteGroup(group)).limit

    async def settle(self) -> None:
        """Wait until every pending revert and callback delivery has finished (on the sandbox's clock)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    # -- merchant scope -------------------------------------------------------------------------------

    def expire_tokens(self, user: User) -> None:
        """Make every client token of ``user`` expire early: from now on, each token the sandbox has seen
        the user present, and each issued before this second, is refused as INVALID_TOKEN (1102). A token
        issued from now on is accepted."""
        self._revocations.expire(user.merchant_id, user.steam_id, int(self.clock.unix()))

    # -- used by the app ------------------------------------------------------------------------------

    def _secret_of(self, merchant_id: str) -> str | None:
        merchant = self.merchants.get(merchant_id)
        return None if merchant is None else merchant.secret

    def _rate_model(self, merchant_id: str, group: RouteGroup) -> RateModel:
        key = (merchant_id, group)
        model = self._models.get(key)
        if model is None:
            quota = self.merchants[merchant_id].quota(group)
            model = self._models[key] = make_rate_model(self.algorithm, quota, burst=self.burst)
        return model

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- callbacks beyond trades ----------------------------------------------------------------------

    async def crypto_withdrawal(
        self,
        merchant: Merchant | str,
        *,
        status: str = "awaiting_approval",
        withdrawal_id: str | None = None,
        external_id: str | None = None,
        **fields: Any,
    ) -> bool:
        """Send a signed ``{"withdrawal": {...}}`` callback (a crypto withdrawal) and wait for the delivery.

        Its schema is not published: the body holds ``id``, ``status``, ``externalId`` and ``fields``. A
        withdrawal in ``awaiting_approval`` is an approval gate.

        Returns:
            True once an attempt got a 2xx.
        """
        body: dict[str, Any] = {"id": withdrawal_id or self._new_id(), "status": status, **fields}
        if external_id is not None:
            body["externalId"] = external_id
        return await self.send_callback(merchant, {"withdrawal": body})

    async def crypto_deposit(
        self,
        merchant: Merchant | str,
        *,
        status: str = "confirmed",
        deposit_id: str | None = None,
        **fields: Any,
    ) -> bool:
        """Send a signed ``{"deposit": {...}}`` callback (a crypto deposit) and wait for the delivery."""
        body = {"id": deposit_id or self._new_id(), "status": status, **fields}
        return await self.send_callback(merchant, {"deposit": body})

    async def send_callback(self, merchant: Merchant | str, payload: Any) -> bool:
        """Send any JSON body to the merchant's callback URL, signed like AssetPay's (a shape to test with).

        Returns:
            True once an attempt got a 2xx (False without a callback URL).
        """
        return await self._callbacks.deliver_payload(self._merchant(merchant), payload)

    # -- seeds ----------------------------------------------------------------------------------------

    @classmethod
    def from_seed(cls, document: Mapping[str, Any], /, **options: Any) -> Self:
        """A sandbox (not started) holding the merchants, users and trades of a JSON seed document.

        Format (JSON):

            {"merchants": [{"id": "m-1", "secret": "...", "api_key": "ap_...", "tier": "verified",
                            "callback_url": null,
                            "quotas": {"cancel-item": [60, 60]},
                            "users": [{"steam_id": "7656...", "trades": [
                                {"game": "cs2", "items": 3, "age_minutes": 45, "type": "withdraw"}]}]}]}

        Every key but ``merchants`` is optional. A trade may also hold ``id``, ``external_id``, ``status``,
        ``item_status``, ``listing_ids`` (true: items get marketplace listing ids, not UUIDs) and
        ``item_external_ids`` (true, or a list of one externalId per item) and ``source`` (``"self"``: the
        merchant's own buy). ``options`` go to the constructor.
        """
        sandbox = cls(**options)
        populate(sandbox, document)
        return sandbox

    def seeded_tokens(self) -> list[SeededToken]:
        """A fresh client token for every user, merchant by merchant."""
        return [
            SeededToken(u.merchant_id, u.id, u.steam_id, self.token(u)) for u in self.users.values()
        ]
