"""Share one merchant's quota across processes and hosts: a GCRA in Redis behind a local FIFO queue.

Every process keeps, per (merchant, route group), a first-in-first-out queue of waiting calls and one worker
coroutine that grants them in order from a schedule kept in Redis. When Redis fails, the worker grants from
this process's share of the quota (N divided by the live processes of the key), so that no window of the
server holds more than N, before, during or after the outage; a configuration error (credentials, ACL, TLS,
URL) raises [`ConfigurationError`][assetpay_async.ConfigurationError] instead. ``docs/redis.md`` has the
details.

Select it with ``AssetPaySession(limiter="redis://...")`` (the ``[redis]`` extra). The code lives in private
modules: `_redis_core` (the limiter), `_redis_worker` (the grant worker), `_redis_outage` (the outage state
machine), `_redis_registry` (the registry and the clients made from URLs), `_redis_urls`, `_redis_faults`,
`_redis_keys`, `_redis_scripts` and `_redis_share`.
"""

from __future__ import annotations

from ._redis_core import RedisLimiter
from ._redis_keys import DEFAULT_MAX_PAUSE_PERIODS
from ._redis_registry import RedisLimiterRegistry

__all__ = ["DEFAULT_MAX_PAUSE_PERIODS", "RedisLimiter", "RedisLimiterRegistry"]

# The public home of the classes (repr, docs, pickling).
RedisLimiter.__module__ = __name__
RedisLimiterRegistry.__module__ = __name__
