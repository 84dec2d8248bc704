"""A stateful AssetPay emulator for tests, demos and benchmarks: ``async with Sandbox() as sandbox``.

It serves the withdrawal-cancel route and the trade reads over a real loopback socket, with AssetPay's rules,
client tokens, per-merchant quotas under a selectable server algorithm, signed callbacks, a movable clock and
scheduled faults. See ``docs/sandbox.md``.

Importing this package is cheap (the pytest plugin lives here): each name is imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._behavior import RustCancelAnswer, SandboxBehavior
    from ._callbacks import CallbackAttempt
    from ._clock import DEFAULT_START, SandboxClock
    from ._faults import Fault, FaultKind, FaultSchedule
    from ._observe import RequestRecord, Totals, max_in_window, quota_share
    from ._rate_models import (
        GCRA,
        AnchoredWindow,
        BlockPenaltyWindow,
        Decision,
        FixedWindow,
        RateModel,
        ServerAlgorithm,
        SlidingLog,
        SlidingWindowCounter,
        make_rate_model,
    )
    from ._sandbox import Sandbox
    from ._state import GameName, Merchant, SandboxItem, SandboxTrade, User
    from ._tokens import encode_token
    from ._world import SeededToken

__all__ = [
    "DEFAULT_START",
    "GCRA",
    "AnchoredWindow",
    "BlockPenaltyWindow",
    "CallbackAttempt",
    "Decision",
    "Fault",
    "FaultKind",
    "FaultSchedule",
    "FixedWindow",
    "GameName",
    "Merchant",
    "RateModel",
    "RequestRecord",
    "RustCancelAnswer",
    "Sandbox",
    "SandboxBehavior",
    "SandboxClock",
    "SandboxItem",
    "SandboxTrade",
    "SeededToken",
    "ServerAlgorithm",
    "SlidingLog",
    "SlidingWindowCounter",
    "Totals",
    "User",
    "encode_token",
    "make_rate_model",
    "max_in_window",
    "quota_share",
]

_HOMES = {
    "Sandbox": "._sandbox",
    "SeededToken": "._world",
    "RustCancelAnswer": "._behavior",
    "SandboxBehavior": "._behavior",
    "CallbackAttempt": "._callbacks",
    "DEFAULT_START": "._clock",
    "SandboxClock": "._clock",
    "Fault": "._faults",
    "FaultKind": "._faults",
    "FaultSchedule": "._faults",
    "RequestRecord": "._observe",
    "Totals": "._observe",
    "max_in_window": "._observe",
    "quota_share": "._observe",
    "GCRA": "._rate_models",
    "AnchoredWindow": "._rate_models",
    "BlockPenaltyWindow": "._rate_models",
    "Decision": "._rate_models",
    "FixedWindow": "._rate_models",
    "RateModel": "._rate_models",
    "ServerAlgorithm": "._rate_models",
    "SlidingLog": "._rate_models",
    "SlidingWindowCounter": "._rate_models",
    "make_rate_model": "._rate_models",
    "GameName": "._state",
    "Merchant": "._state",
    "SandboxItem": "._state",
    "SandboxTrade": "._state",
    "User": "._state",
    "encode_token": "._tokens",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
