"""The Sandbox: AssetPay's withdrawal-cancel surface, stateful, on a real loopback socket."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import attrs
from aiohttp import web

from assetpay_async._quota import MerchantTier, Quota, RouteGroup

from . import _rules as rules
from . import _tokens as tokens
from ._app import build_app
from ._behavior import SandboxBehavior
from ._callbacks import CallbackAttempt, CallbackDispatcher
from ._clock import SandboxClock
from ._faults import FaultSchedule
from ._observe import RequestRecord, Totals, max_in_window, totals
from ._rate_models import RateModel, ServerAlgorithm, make_rate_model
from ._state import (
    APPIDS,
    TERMINAL,
    GameName,
    Merchant,
    SandboxItem,
    SandboxTrade,
    User,
    render_trade,
    trade_status_after,
)

__all__ = ["Sandbox", "SeededToken"]

TOKEN_LIFETIME: Final = dt.timedelta(hours=24)
_STEAM_ID_BASE: Final = 76561197960265728
_NAMES: Final = {
    GameName.CS2: (
        "AK-47 | Redline (Field-Tested)",
        "AWP | Asiimov (Battle-Scarred)",
        "M4A1-S | Printstream (Minimal Wear)",
        "Glock-18 | Fade (Factory New)",
        "Desert Eagle | Blaze (Factory New)",
    ),
    GameName.RUST: ("Tempered AK47", "Alien Red", "Big Grin", "Punishment Mask", "No Mercy AK47"),
}


@attrs.frozen
class SeededToken:
    """A client token of one seeded user (for the command line and demos)."""

    merchant_id: str
    user_id: str
    steam_id: str
    token: str = attrs.field(repr=False)


def _as_quota(value: Quota | tuple[int, float]) -> Quota:
    return value if isinstance(value, Quota) else Quota(*value)


def _stored_id(value: str) -> str:
    """UUIDs lowercase (as AssetPay renders them), other ids (listing ids) exactly as given."""
    try:
        return str(uuid.UUID(value)) if len(value) == 36 else value
    except ValueError:
        return value


def _seconds(value: dt.timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


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
        self.revert_delay = _seconds(revert_delay)
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
        self._expired_before: dict[tuple[str, str], int] = {}
        self._seen_tokens: dict[tuple[str, str], set[str]] = {}
        self._revoked: set[str] = set()
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
        runner = web.AppRunner(
            build_app(self), access_log=None, handle_signals=False, shutdown_timeout=2.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = int(runner.addresses[0][1])

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
            quotas={RouteGroup(g): _as_quota(q) for g, q in (quotas or {}).items()},
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
        owner = self._merchant(merchant)
        if steam_id is None:
            steam_id = str(_STEAM_ID_BASE + self._ids.randrange(1, 2**31))
        if trade_url is None:
            partner = int(steam_id) - _STEAM_ID_BASE if steam_id.isdigit() else 1
            token = f"{self._ids.getrandbits(32):08x}"
            trade_url = (
                f"https://steamcommunity.com/tradeoffer/new/?partner={partner}&token={token}"
            )
        if (owner.id, steam_id) in self._users_by_steam:
            raise ValueError(f"merchant {owner.id} already has a user with Steam id {steam_id}")
        user = User(id=self._new_id(), merchant_id=owner.id, steam_id=steam_id, trade_url=trade_url)
        self.users[user.id] = user
        self._users_by_steam[(owner.id, steam_id)] = user
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
        return tokens.encode(
            {"alg": "HS256", "typ": "JWT", "userId": merchant.id},
            {
                "merchantId": merchant.id,
                "client": client,
                "iat": iat,
                "exp": iat + int(lifetime.total_seconds()),
            },
            merchant.secret,
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
        if source not in ("client", "self"):
            raise ValueError("source must be 'client' or 'self'")
        if type not in ("withdraw", "deposit"):
            raise ValueError("type must be 'withdraw' or 'deposit'")
        if items < 1:
            raise ValueError("a trade has at least one item")
        kind = GameName(game)
        if item_ids is not None:
            ids = [_stored_id(i) for i in item_ids]
        elif listing_ids:
            ids = [f"{self._ids.getrandbits(64):016x}" for _ in range(items)]
        else:
            ids = [self._new_id() for _ in range(items)]
        if len(ids) != items:
            raise ValueError("item_ids must have one id per item")
        if isinstance(item_external_ids, bool):
            externals: list[str | None] = [
                f"ext-{i[:8]}" if item_external_ids else None for i in ids
            ]
        else:
            externals = list(item_external_ids)
            if len(externals) != items:
                raise ValueError("item_external_ids must have one externalId per item")
        created = self.clock.now() - _seconds(age)
        trade = SandboxTrade(
            id=_stored_id(trade_id or self._new_id()),
            type=type,
            merchant_id=user.merchant_id,
            user_id=user.id,
            steam_id=user.steam_id,
            trade_url=user.trade_url,
            game=kind,
            status=status or ("active" if type == "withdraw" else "completed"),
            items=[
                SandboxItem(
                    id=item_id,
                    appid=APPIDS[kind],
                    status=item_status if type == "withdraw" else None,
                    name=(name := self._ids.choice(_NAMES[kind])),
                    market_hash_name=name,
                    price=round(self._ids.uniform(0.5, 250.0), 2),
                    external_id=item_external,
                )
                for item_id, item_external in zip(ids, externals, strict=True)
            ],
            created_at=created,
            updated_at=created,
            external_id=external_id,
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
        owner = self._merchant(merchant)
        wanted = RouteGroup(group)
        times = [
            r.time
            for r in self._requests
            if r.merchant_id == owner.id and r.group is wanted and r.counted and not r.rate_limited
        ]
        return max_in_window(
            times, owner.quota(wanted).period_seconds if window is None else window
        )

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
        key = (user.merchant_id, user.steam_id)
        self._expired_before[key] = int(self.clock.unix())
        self._revoked.update(self._seen_tokens.pop(key, set()))

    def _token_refused(self, claims: tokens.TokenClaims, signature: str) -> bool:
        key = (claims.merchant_id, claims.steam_id)
        if signature in self._revoked:
            return True
        self._seen_tokens.setdefault(key, set()).add(signature)
        cutoff = self._expired_before.get(key)
        return cutoff is not None and claims.issued_at < cutoff

    def _merchant_by_key(self, api_key: str) -> Merchant | None:
        return next((m for m in self.merchants.values() if m.api_key == api_key), None)

    def _authenticate_client(
        self, merchant: Merchant, steam_id: str, trade_url: str, extra: Mapping[str, Any]
    ) -> rules.Answer:
        user = self._users_by_steam.get((merchant.id, steam_id))
        if user is None:
            user = self.add_user(merchant, steam_id=steam_id, trade_url=trade_url)
        minted = attrs.evolve(user, trade_url=trade_url) if user.trade_url != trade_url else user
        self.tokens_issued += 1
        issued_at = self.clock.wall()
        token = self.token(minted, claims=extra, issued_at=issued_at)
        while (
            token.rpartition(".")[2] in self._revoked
        ):  # the same claims a second later: a new token
            issued_at += dt.timedelta(seconds=1)
            token = self.token(minted, claims=extra, issued_at=issued_at)
        return rules.Answer.ok({"token": token})

    def _secure_cancel(
        self, merchant: Merchant, trade_id: str, item_id: str | None
    ) -> rules.Answer:
        """``/secure/buy`` cancels: the merchant's own buys only, run as the buy's owner would."""
        trade = rules.find_trade(self.trades, merchant.id, trade_id)
        if trade is None or trade.source != "self":
            return rules.Answer.fail(404, 21, "TRADE_NOT_FOUND", f"Trade {trade_id} not found")
        owner = self.users[trade.user_id]
        if item_id is None:
            return self._cancel_trade(owner, trade_id)
        return self._cancel(owner, trade_id, item_id)

    # -- used by the app ------------------------------------------------------------------------------

    def _secret_of(self, merchant_id: str) -> str | None:
        merchant = self.merchants.get(merchant_id)
        return None if merchant is None else merchant.secret

    def _user_for(self, claims: tokens.TokenClaims) -> User:
        # A token the merchant minted for a Steam user the sandbox has not seen creates that user.
        user = self._users_by_steam.get((claims.merchant_id, claims.steam_id))
        if user is None:
            user = self.add_user(
                claims.merchant_id, steam_id=claims.steam_id, trade_url=claims.trade_url
            )
        return user

    def _rate_model(self, merchant_id: str, group: RouteGroup) -> RateModel:
        key = (merchant_id, group)
        model = self._models.get(key)
        if model is None:
            quota = self.merchants[merchant_id].quota(group)
            model = self._models[key] = make_rate_model(self.algorithm, quota, burst=self.burst)
        return model

    def _marketplace_refuses(self, item: SandboxItem) -> bool:
        if item.refuse_cancel:
            return True
        return self.marketplace_refusal > 0 and self._market.random() < self.marketplace_refusal

    def _cancel(self, user: User, trade_id: str, item_id: str) -> rules.Answer:
        outcome = rules.cancel_item(
            self.trades,
            user,
            trade_id,
            item_id,
            now=self.clock.now(),
            behavior=self.behavior,
            marketplace_refuses=self._marketplace_refuses,
        )
        trade = rules.find_trade(self.trades, user.merchant_id, trade_id)
        if outcome.accepted is not None and trade is not None:  # (the rules just found it)
            outcome.accepted.cancel_pending = True
            self._spawn(self._revert_later(trade, outcome.accepted))
        return outcome.answer

    def _cancel_trade(self, user: User, trade_id: str) -> rules.Answer:
        outcome = rules.cancel_trade(
            self.trades,
            user,
            trade_id,
            now=self.clock.now(),
            behavior=self.behavior,
            marketplace_refuses=self._marketplace_refuses,
        )
        trade = rules.find_trade(self.trades, user.merchant_id, trade_id)
        if trade is not None:
            for item in outcome.accepted:
                item.cancel_pending = True
                self._spawn(self._revert_later(trade, item))
        return outcome.answer

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _revert_later(self, trade: SandboxTrade, item: SandboxItem) -> None:
        await self.clock.sleep_until(self.clock.now() + self.revert_delay)
        item.cancel_pending = False
        if item.status in TERMINAL:  # something else finished it meanwhile
            return
        item.status = "reverted"
        trade.reverted_by = "supplier"
        trade.status = trade_status_after(trade)
        trade.updated_at = self.clock.now()
        merchant = self.merchants[trade.merchant_id]
        if merchant.callback_url is not None:
            await self._callbacks.deliver(merchant, self.render(trade))

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
        for m in document.get("merchants", ()):
            merchant = sandbox.add_merchant(
                m.get("tier", "verified"),
                quotas={g: tuple(q) for g, q in m.get("quotas", {}).items()},
                callback_url=m.get("callback_url"),
                merchant_id=m.get("id"),
                secret=m.get("secret"),
                previous_secret=m.get("previous_secret"),
                api_key=m.get("api_key"),
            )
            for u in m.get("users", ()):
                user = sandbox.add_user(
                    merchant, steam_id=u.get("steam_id"), trade_url=u.get("trade_url")
                )
                for t in u.get("trades", ()):
                    sandbox.add_trade(
                        user,
                        game=t.get("game", "cs2"),
                        items=int(t.get("items", 1)),
                        age=dt.timedelta(minutes=float(t.get("age_minutes", 0))),
                        type=t.get("type", "withdraw"),
                        status=t.get("status"),
                        item_status=t.get("item_status", "active"),
                        external_id=t.get("external_id"),
                        trade_id=t.get("id"),
                        listing_ids=bool(t.get("listing_ids", False)),
                        item_external_ids=t.get("item_external_ids", False),
                        source=t.get("source", "client"),
                    )
        return sandbox

    def seeded_tokens(self) -> list[SeededToken]:
        """A fresh client token for every user, merchant by merchant."""
        return [
            SeededToken(u.merchant_id, u.id, u.steam_id, self.token(u)) for u in self.users.values()
        ]
