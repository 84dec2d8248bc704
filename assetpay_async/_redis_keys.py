"""Names of the Redis limiter's keys, and the bound on a pause stored there. Pure."""

from __future__ import annotations

from typing import Final

from ._errors import ConfigurationError
from ._quota import RouteGroup

__all__ = ["DEFAULT_MAX_PAUSE_PERIODS", "limiter_keys"]

DEFAULT_MAX_PAUSE_PERIODS: Final = 5
"""A pause stored in Redis is believed for at most this many quota periods (see ``max_pause``)."""


def limiter_keys(
    key_prefix: str, merchant_id: str, group: RouteGroup, *, hash_tag: bool
) -> tuple[str, str]:
    """The schedule key and the peers key of (merchant, group).

    With ``hash_tag`` the merchant is a ``{...}`` hash tag, so that a cluster keeps both keys (and every
    group of the merchant) in one slot. Without it the names are those of earlier releases, so processes
    of two releases on one plain Redis share one schedule.
    """
    if hash_tag and any(brace in text for text in (key_prefix, merchant_id) for brace in "{}"):
        raise ConfigurationError(
            "key_prefix and merchant ids must not contain { or } with a cluster"
        )
    merchant = f"{{{merchant_id}}}" if hash_tag else merchant_id
    group_name = RouteGroup(group).value
    return (
        f"{key_prefix}:limiter:{merchant}:{group_name}",
        f"{key_prefix}:peers:{merchant}:{group_name}",
    )
