"""The limiter interface the session talks to, and the process-wide registry of in-memory limiters.

One limiter exists per (merchant, route group) in a registry, so every session and client of a merchant in the
process shares it. The HTTP layer calls [`RateLimiter.acquire`][assetpay_async._limiting.RateLimiter.acquire]
before every attempt (retries included), ``rate_limited`` after a 429 and ``succeeded`` after any other answer.
``docs/limiter.md`` describes the guarantees.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import attrs

from ._errors import ConfigurationError
from ._limiter_types import (
    LimiterKey,
    LimiterPolicy,
    LimiterRegistry,
    LimiterStats,
    RateLimiter,
    ServerModel,
)
from ._memory_limiter import Clock, MemoryLimiter
from ._pacing import MEASURED, PacingConfig, checked_config
from ._quota import Quota, RouteGroup

__all__ = [
    "Clock",
    "LimiterKey",
    "LimiterPolicy",
    "LimiterRegistry",
    "LimiterStats",
    "MemoryLimiter",
    "MemoryLimiterRegistry",
    "RateLimiter",
    "ServerModel",
    "default_registry",
    "with_pacing_options",
]

_log = logging.getLogger("assetpay_async.limiter")


_Asked = tuple[Quota, LimiterPolicy | str, float | str, ServerModel | str]


@attrs.define
class _Entry:
    limiter: MemoryLimiter
    asked: _Asked
    """The arguments of the configuration in force (the slowest asked for so far)."""
    warned: bool = False


class MemoryLimiterRegistry:
    """In-memory limiters by (merchant, route group), shared by every session that uses this registry.

    Implements [`LimiterRegistry`][assetpay_async._limiting.LimiterRegistry]. Safe to share between threads
    (each running its own event loop): they get the same limiter, which paces them together.

    When sessions of one merchant configure one key differently (quota, policy, latency margin or server
    model), the slower pacing is kept: the limiter adopts it if it is slower than the one in force at that
    moment (queued calls keep their places) and ignores it otherwise, and a WARNING is logged the first time
    the key is asked with a differing configuration. Pacing at the faster one would draw 429s from the
    slower truth.

    Args:
        clock: the clock every limiter of this registry reads (default: the running loop's ``time()``).
    """

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, RouteGroup], _Entry] = {}

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy = LimiterPolicy.EVEN,
        latency_margin: float | str = MEASURED,
        server_model: ServerModel | str = ServerModel.UNKNOWN,
    ) -> RateLimiter:
        """The limiter of ``merchant_id`` for ``group``, created on first use.

        Args:
            merchant_id: the merchant whose quota is paced.
            group: the route group sharing the quota.
            quota: the quota this caller believes in.
            policy: the spacing policy this caller asks for.
            latency_margin: the J this caller asks for, in seconds, or ``"measured"`` (the default).
            server_model: how this caller says the server counts.

        Raises:
            ConfigurationError: a bad ``policy``, ``latency_margin`` or ``server_model``.
        """
        asked: _Asked = (quota, policy, latency_margin, server_model)
        entry = self._entries.get((merchant_id, group))
        if entry is not None and entry.asked == asked:
            return entry.limiter  # the common case: a session asking again, once per attempt
        with self._lock:
            key = LimiterKey(merchant_id, RouteGroup(group))
            entry = self._entries.get((merchant_id, key.group))
            if entry is None:
                limiter = MemoryLimiter(
                    key,
                    quota,
                    policy=policy,
                    latency_margin=latency_margin,
                    server_model=server_model,
                    clock=self._clock,
                )
                entry = self._entries[(merchant_id, key.group)] = _Entry(limiter, asked)
            elif entry.asked != asked:
                self._reconcile(entry, asked, checked_config(*asked))
            return entry.limiter

    def clear(self) -> None:
        """Forget every limiter (tests; a new process starts empty anyway)."""
        with self._lock:
            self._entries.clear()

    async def aclose(self) -> None:
        """Nothing to release: in-memory limiters hold no connection and no task."""

    @staticmethod
    def _reconcile(entry: _Entry, asked: _Asked, config: PacingConfig) -> None:
        current = entry.limiter.pacing
        slower = entry.limiter.adopt(config)
        if slower:
            entry.asked = asked
        if entry.warned:
            return
        if not slower:
            outcome = "the current one"
        elif entry.limiter.config == config:
            outcome = "switching to the new one"
        else:  # a fixed J beside a measured one
            outcome = f"measuring J, never below {entry.limiter.config.floor:g}s"
        entry.warned = True
        key = entry.limiter.key
        interval = config.pacing(entry.limiter.latency_margin).interval
        _log.warning(
            "merchant %r %s: a session configured %d per %gs (policy %s, latency margin %s, server model "
            "%s: one grant every %.3fs) but the shared limiter paced one grant every %.3fs; keeping the "
            "slower one (%s); configure every session of a merchant alike",
            key.merchant_id,
            key.group,
            config.quota.limit,
            config.quota.period_seconds,
            config.policy.value,
            MEASURED if config.margin is None else f"{config.margin:g}s",
            config.server_model.value,
            interval,
            current.interval,
            outcome,
        )


@attrs.frozen
class _WithPacingOptions:
    """A registry that asks the in-memory one for a measured margin and/or a declared server model."""

    inner: MemoryLimiterRegistry
    measured: bool
    server_model: ServerModel

    def get(
        self,
        merchant_id: str,
        group: RouteGroup,
        quota: Quota,
        *,
        policy: LimiterPolicy,
        latency_margin: float,
    ) -> RateLimiter:
        return self.inner.get(
            merchant_id,
            group,
            quota,
            policy=policy,
            latency_margin=MEASURED if self.measured else latency_margin,
            server_model=self.server_model,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def with_pacing_options(
    limiter: object, *, latency_margin: float | str | None, server_model: ServerModel | str
) -> Callable[[LimiterRegistry], LimiterRegistry]:
    """How a session passes a measured margin and a declared server model on to its registry.

    Checked before the session makes any registry. Returns what turns the session's registry into one
    that asks for them (the registry itself when neither is asked).

    Args:
        limiter: the session's ``limiter=`` argument.
        latency_margin: the session's ``latency_margin=``: ``"measured"``, seconds (checked elsewhere), or
            None for the default: measured with the in-memory limiter (``limiter`` None or a
            [`MemoryLimiterRegistry`][assetpay_async._limiting.MemoryLimiterRegistry]), which alone can
            measure; the fixed J the session passes (1 s) with any other.
        server_model: the session's ``server_model=``.

    Raises:
        ConfigurationError: an unknown ``server_model``, or an explicit ``"measured"`` margin or a declared
            server model with a limiter other than the in-memory one (which alone offers them for now).
    """
    in_memory = limiter is None or isinstance(limiter, MemoryLimiterRegistry)
    measured = latency_margin == MEASURED or (latency_margin is None and in_memory)
    model = checked_config(Quota(1, 1.0), LimiterPolicy.EVEN, 0.0, server_model).server_model
    if not measured and model is ServerModel.UNKNOWN:
        return lambda registry: registry
    if not in_memory:
        raise ConfigurationError(
            f"latency_margin={MEASURED!r} and server_model= need the in-memory limiter; "
            f"{type(limiter).__name__} does not offer them: pass seconds and no server_model"
        )

    def wrap(registry: LimiterRegistry) -> LimiterRegistry:
        assert isinstance(registry, MemoryLimiterRegistry)  # noqa: S101 - checked above
        return _WithPacingOptions(registry, measured, model)

    return wrap


_DEFAULT = MemoryLimiterRegistry()


def default_registry() -> MemoryLimiterRegistry:
    """The process-wide registry every session uses unless given another."""
    return _DEFAULT
