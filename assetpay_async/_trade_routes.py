"""What a session has learnt about AssetPay's trade-read routes (one small mutable record per session)."""

from __future__ import annotations

import attrs

__all__ = ["TradeRoutes"]


@attrs.define
class TradeRoutes:
    """Per-session knowledge of the read routes.

    Attributes:
        single_trade_missing: ``GET /client/trades/{id}`` answered as a missing route does (a 404 or 405
            without an AssetPay envelope); from then on the session finds trades through ``GET /client/trades``.
    """

    single_trade_missing: bool = False
