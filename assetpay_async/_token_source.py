"""One end user's client token in merchant mode: issued on first use, cached, renewed before it expires.

A [`UserTokenSource`][assetpay_async._token_source.UserTokenSource] is what C1's ``TokenSource`` protocol
asks for: ``current()`` before each attempt, ``reissue(rejected)`` after AssetPay refused a token as
invalid. Concurrent callers share one issuance (a lock and a re-check behind it).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Final

from ._errors import AssetPayError
from ._minting import EndUser, expiry_of, int_claim
from ._tokens import SecretToken

__all__ = ["RENEW_BEFORE", "UserTokenSource"]

logger = logging.getLogger("assetpay_async")

RENEW_BEFORE: Final = 300.0
"""A token is renewed this many seconds before its ``exp`` (as AssetPay's official client does)."""

Issue = Callable[[EndUser, int], Awaitable[SecretToken]]
"""Issues a token for a user; the int is the least ``iat`` a locally minted token may carry (so a
re-issued token never equals the one it replaces)."""


class UserTokenSource:
    """The cached client token of one end user, renewed ``RENEW_BEFORE`` seconds before ``exp``.

    Args:
        user: the end user's checked claims.
        issue: mints locally or asks ``POST /auth/authenticate-client``.
        unix_now: the current Unix time (the session's wall clock, so tests can move it).

    A token without ``exp`` (possible from the API: UNCONFIRMED) is kept until AssetPay refuses it.
    """

    __slots__ = ("_by_reissue", "_exp", "_issue", "_issued", "_lock", "_token", "_unix_now", "user")

    def __init__(self, user: EndUser, issue: Issue, unix_now: Callable[[], float]) -> None:
        self.user = user
        self._issue = issue
        self._unix_now = unix_now
        self._token: SecretToken | None = None
        self._exp: int | None = None
        self._issued = 0
        self._by_reissue = False
        """Whether the cached token was issued after a refusal (then concurrent refusals share it)."""
        self._lock = asyncio.Lock()

    @property
    def issued(self) -> int:
        """How many tokens this source obtained."""
        return self._issued

    @property
    def fingerprint(self) -> str:
        """The current token's fingerprint, or ``none`` before the first."""
        return "none" if self._token is None else self._token.fingerprint

    def _fresh(self, token: SecretToken | None) -> bool:
        if token is None:
            return False
        return self._exp is None or self._unix_now() < self._exp - RENEW_BEFORE

    async def current(self) -> SecretToken:
        """A token valid now: the cached one, or a new one when it is within 5 minutes of ``exp``.

        Raises:
            AssetPayError: issuance through ``/auth/authenticate-client`` failed (typed as any call).
        """
        token = self._token
        if self._fresh(token):
            assert token is not None  # noqa: S101 - _fresh checked it
            return token
        return await self._renew(stale=token)

    async def reissue(self, rejected: SecretToken) -> SecretToken | None:
        """A new token after AssetPay refused ``rejected``; None when none can be had.

        When another caller already re-issued the user's token after a refusal, that token is returned
        without a new issuance (one issuance shared by concurrent callers); a token obtained otherwise (a
        renewal before ``exp``) may share the refused one's fate, so a new one is issued.
        """
        try:
            token = await self._renew(stale=rejected, forced=True)
        except AssetPayError as exc:
            logger.debug("re-issuing a client token failed: %s", type(exc).__name__)
            return None
        return None if token == rejected else token

    async def _renew(self, *, stale: SecretToken | None, forced: bool = False) -> SecretToken:
        async with self._lock:
            token = self._token
            shared = self._by_reissue if forced else self._fresh(token)
            if token is not None and token != stale and shared:
                return token  # someone renewed it while this caller waited for the lock
            floor = self._next_iat(stale, token)
            token = await self._issue(self.user, floor)
            self._token, self._exp = token, expiry_of(token)
            self._by_reissue = forced
            self._issued += 1
            return token

    def _next_iat(self, stale: SecretToken | None, cached: SecretToken | None) -> int:
        now = math.floor(self._unix_now())
        # A token minted in the same second as one it replaces would be that same token.
        floors = [int_claim(t, "iat") for t in (stale, cached) if t is not None]
        return max([now, *(f + 1 for f in floors if f is not None)])
