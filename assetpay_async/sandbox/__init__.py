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
    from ._sandbox import Sandbox, SeededToken
    from .behavior import RustCancelAnswer, SandboxBehavior
    from .callbacks import CallbackAttempt
    from .clock import DEFAULT_START, SandboxClock
    from .faults import Fault, FaultKind, FaultSchedule
    from .observe import RequestRecord, Totals, max_in_window, quota_share
    from .rate_models import (
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
    from .state import GameName, Merchant, SandboxItem, SandboxTrade, User

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
    "make_rate_model",
    "max_in_window",
    "quota_share",
]

_HOMES = {
    "Sandbox": "._sandbox",
    "SeededToken": "._sandbox",
    "RustCancelAnswer": ".behavior",
    "SandboxBehavior": ".behavior",
    "CallbackAttempt": ".callbacks",
    "DEFAULT_START": ".clock",
    "SandboxClock": ".clock",
    "Fault": ".faults",
    "FaultKind": ".faults",
    "FaultSchedule": ".faults",
    "RequestRecord": ".observe",
    "Totals": ".observe",
    "max_in_window": ".observe",
    "quota_share": ".observe",
    "GCRA": ".rate_models",
    "AnchoredWindow": ".rate_models",
    "BlockPenaltyWindow": ".rate_models",
    "Decision": ".rate_models",
    "FixedWindow": ".rate_models",
    "RateModel": ".rate_models",
    "ServerAlgorithm": ".rate_models",
    "SlidingLog": ".rate_models",
    "SlidingWindowCounter": ".rate_models",
    "make_rate_model": ".rate_models",
    "GameName": ".state",
    "Merchant": ".state",
    "SandboxItem": ".state",
    "SandboxTrade": ".state",
    "User": ".state",
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
