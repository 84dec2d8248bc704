"""The merchant scope's rules (``api-key`` routes) as pure functions: auth body, trade reads by refs.

``POST /auth/authenticate-client`` checks its body as the OpenAPI document does; ``GET /secure/trades``
lists the merchant's own (``source: "self"``) trades; ``GET /secure/trades/{refs}`` resolves up to 100
comma-separated refs among the trades the behaviour makes visible (own trades only, or clients' too: the
UNCONFIRMED point).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, Final

from ._behavior import SandboxBehavior
from ._rules import Answer, list_page, validation_failed
from ._state import SandboxTrade, same_ref

__all__ = ["MAX_REFS", "check_authenticate_body", "secure_list", "secure_refs", "split_refs"]

MAX_REFS: Final = 100
_STEAM_ID: Final = re.compile(r"76561\d{12}")
_TRADE_URL: Final = re.compile(
    r"https://steamcommunity\.com/tradeoffer/new/\?partner=\d{1,10}&token=[A-Za-z0-9_-]{8}"
)
_BODY_KEYS: Final = frozenset({"clientSteamId", "clientTradeUrl", "clientId", "clientData"})


def _client_data_problems(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {"clientData": "must be an object"}
    bad: dict[str, str] = {}
    for key, value in data.items():
        path = f"clientData.{key}"
        if key in ("totalWager", "kycLevel"):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                bad[path] = "must be a number >= 0"
        elif key in ("fiatDeposits", "cryptoDeposits"):
            if not isinstance(value, bool):
                bad[path] = "must be a boolean"
        elif key == "kycHash":
            if not isinstance(value, str):
                bad[path] = "must be a string"
        elif key == "registrationDate":
            if value is not None and not _is_datetime(value):
                bad[path] = "must be a date-time or null"
        else:
            bad[path] = "is not allowed"
    return bad


# The SDK checks the same body before sending it (``_minting``) with code of its own, on purpose: the sandbox
# reads the API independently, so that a mistake in the SDK's reading cannot pass its own test server.
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def check_authenticate_body(
    raw: bytes, behavior: SandboxBehavior
) -> tuple[str, str, dict[str, Any]] | Answer:
    """The Steam id, trade URL and extra client claims of a valid body, or the VALIDATION_FAILED answer."""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return validation_failed(behavior, {"body": "must be a JSON object"})
    bad = {key: "is not allowed" for key in body if key not in _BODY_KEYS}
    steam_id, trade_url = body.get("clientSteamId"), body.get("clientTradeUrl")
    if not isinstance(steam_id, str) or not _STEAM_ID.fullmatch(steam_id):
        bad["clientSteamId"] = "must match ^76561\\d{12}$"
    if not isinstance(trade_url, str) or not _TRADE_URL.fullmatch(trade_url):
        bad["clientTradeUrl"] = "must be a Steam trade offer URL"
    extra: dict[str, Any] = {}
    if "clientId" in body:
        client_id = body["clientId"]
        if not isinstance(client_id, str) or not 1 <= len(client_id) <= 128:
            bad["clientId"] = "must be a string of 1 to 128 characters"
        extra["clientId"] = client_id
    if "clientData" in body:
        bad.update(_client_data_problems(body["clientData"]))
        extra["clientData"] = body["clientData"]
    if bad:
        return validation_failed(behavior, bad)
    assert isinstance(steam_id, str)  # noqa: S101 - checked above
    assert isinstance(trade_url, str)  # noqa: S101
    return steam_id, trade_url, extra


def split_refs(raw_path: str, prefix: str) -> list[str]:
    """The refs of ``/secure/trades/{refs}`` as on the wire: split on raw commas, then percent-decoded."""
    tail = raw_path[len(prefix) :]
    return [urllib.parse.unquote(part) for part in tail.split(",")]


def _visible(
    trades: Mapping[str, SandboxTrade], merchant_id: str, behavior: SandboxBehavior
) -> list[SandboxTrade]:
    return [
        t
        for t in trades.values()
        if t.merchant_id == merchant_id
        and (t.source == "self" or behavior.secure_trades_include_clients)
    ]


def _resolve(visible: list[SandboxTrade], ref: str) -> SandboxTrade | None:
    by_id = next((t for t in visible if same_ref(ref, t.id)), None)
    return by_id or next((t for t in visible if same_ref(ref, t.external_id)), None)


def secure_refs(
    trades: Mapping[str, SandboxTrade],
    merchant_id: str,
    refs: list[str],
    *,
    behavior: SandboxBehavior,
    render: Callable[[SandboxTrade], dict[str, Any]],
) -> Answer:
    """``GET /secure/trades/{refs}``: one ref gives one trade or 404; 2-100 give the resolved ones."""
    if len(refs) > MAX_REFS:
        return validation_failed(behavior, {"refs": f"at most {MAX_REFS} refs"})
    if any(not ref.strip() for ref in refs):
        return validation_failed(behavior, {"refs": "must not hold an empty ref"})
    visible = _visible(trades, merchant_id, behavior)
    if len(refs) == 1:
        trade = _resolve(visible, refs[0])
        if trade is None:
            return Answer.fail(404, 21, "TRADE_NOT_FOUND", f"Trade {refs[0]} not found")
        return Answer.ok(render(trade))
    found: list[dict[str, Any]] = []
    seen: set[str] = set()
    for ref in refs:
        trade = _resolve(visible, ref)
        if trade is not None and trade.id not in seen:
            seen.add(trade.id)
            found.append(render(trade))
    return Answer.ok(found)


def secure_list(
    trades: Mapping[str, SandboxTrade],
    merchant_id: str,
    query: Mapping[str, str],
    *,
    behavior: SandboxBehavior,
    render: Callable[[SandboxTrade], dict[str, Any]],
) -> Answer:
    """``GET /secure/trades``: the merchant's own (``self``) trades, newest first, a page at a time."""
    own = [t for t in trades.values() if t.merchant_id == merchant_id and t.source == "self"]
    return list_page(own, query, behavior=behavior, render=render)
