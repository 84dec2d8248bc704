"""``assetpay sandbox``: the AssetPay emulator on loopback until Ctrl-C, with its URL and seeded tokens printed.

The tokens printed are the sandbox's own (signed with its made-up merchant secrets): printing them is the point.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from assetpay_async._quota import RouteGroup
from assetpay_async.sandbox import Sandbox

from ._exit import ExitCode
from ._render import console, write_json_line

__all__ = ["DEFAULT_WORLD", "describe_world", "run_sandbox"]

DEFAULT_WORLD: Final[dict[str, Any]] = {
    "merchants": [
        {
            "tier": "verified",
            "users": [
                {
                    "trades": [
                        {"game": "cs2", "items": 3, "age_minutes": 45},
                        {"game": "cs2", "items": 2, "age_minutes": 10},
                        {"game": "rust", "items": 1, "age_minutes": 60},
                        {"game": "cs2", "items": 1, "age_minutes": 90, "item_status": "completed"},
                    ]
                },
                {"trades": [{"game": "cs2", "items": 2, "age_minutes": 120}]},
            ],
        }
    ]
}
"""The world served without ``--seed``: one verified merchant, two users, eligible and ineligible items."""


def describe_world(sandbox: Sandbox) -> dict[str, Any]:
    """The sandbox's URL, merchants (with their sandbox secrets), users, tokens and trades, as JSON-ready data."""
    now = sandbox.clock.now()
    tokens = {t.user_id: t.token for t in sandbox.seeded_tokens()}
    merchants = []
    for merchant in sandbox.merchants.values():
        users = []
        for user in (u for u in sandbox.users.values() if u.merchant_id == merchant.id):
            trades = [
                {
                    "id": trade.id,
                    "type": trade.type,
                    "game": trade.game.value,
                    "age_minutes": round((now - trade.created_at) / 60, 1),
                    "items": [{"id": item.id, "status": item.status} for item in trade.items],
                }
                for trade in sandbox.trades.values()
                if trade.user_id == user.id
            ]
            users.append(
                {
                    "id": user.id,
                    "steam_id": user.steam_id,
                    "token": tokens[user.id],
                    "trades": trades,
                }
            )
        merchants.append(
            {
                "id": merchant.id,
                "tier": merchant.tier.value,
                "secret": merchant.secret,
                "callback_url": merchant.callback_url,
                "quotas": {
                    group.value: [merchant.quota(group).limit, merchant.quota(group).period_seconds]
                    for group in RouteGroup
                },
                "users": users,
            }
        )
    return {"url": sandbox.base_url, "algorithm": sandbox.algorithm.value, "merchants": merchants}


def _print_world(world: dict[str, Any]) -> None:
    out = console()
    out.print(
        f"AssetPay sandbox on {world['url']} (server algorithm {world['algorithm']}); Ctrl-C stops it.",
        markup=False,
    )
    out.print("Sandbox tokens and secrets below are test values, made to be printed.", markup=False)
    for merchant in world["merchants"]:
        quotas = ", ".join(f"{g} {n}/{t:g}s" for g, (n, t) in merchant["quotas"].items())
        out.print(
            f"\nmerchant {merchant['id']} ({merchant['tier']}; {quotas}) secret {merchant['secret']}",
            markup=False,
        )
        if merchant["callback_url"]:
            out.print(f"  callbacks to {merchant['callback_url']}", markup=False)
        for user in merchant["users"]:
            out.print(f"  user steam {user['steam_id']}", markup=False)
            out.print(f"    ASSETPAY_CLIENT_TOKEN={user['token']}", markup=False, soft_wrap=True)
            for trade in user["trades"]:
                items = " ".join(f"{i['id']}({i['status']})" for i in trade["items"])
                out.print(
                    f"    trade {trade['id']} {trade['type']} {trade['game']} "
                    f"{trade['age_minutes']:g} min old: {items}",
                    markup=False,
                    soft_wrap=True,
                )


def _load_seed(path: str | None) -> dict[str, Any]:
    if path is None:
        return DEFAULT_WORLD
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not isinstance(document.get("merchants"), list):
        raise TypeError('a seed is a JSON object with a "merchants" list (see docs/sandbox.md)')
    return document


def with_callback_url(document: dict[str, Any], url: str | None) -> dict[str, Any]:
    """The seed with a default callback URL: ``url`` (``--callback-url``), else the seed's top-level
    ``callback_url``, for every merchant that names none of its own."""
    default = url if url is not None else document.get("callback_url")
    if default is None:
        return document
    if not isinstance(default, str) or not default.startswith(("http://", "https://")):
        raise ValueError(f"a callback URL must start with http:// or https://, got {default!r}")
    merchants = [
        m if not isinstance(m, dict) or m.get("callback_url") else m | {"callback_url": default}
        for m in document.get("merchants", ())
    ]
    return document | {"merchants": merchants}


async def run_sandbox(args: argparse.Namespace) -> ExitCode:
    """Serve until cancelled (Ctrl-C, or SIGTERM), then close cleanly."""
    err = console(stderr=True)
    try:
        sandbox = Sandbox.from_seed(
            with_callback_url(_load_seed(args.seed), args.callback_url),
            host=args.host,
            port=args.port,
            algorithm=args.algorithm,
            burst=args.burst,
            seed=0,
            revert_delay=args.revert_delay,
            start=dt.datetime.now(dt.UTC),
        )
    except (OSError, ValueError, TypeError, KeyError) as exc:
        err.print(f"assetpay sandbox: bad seed {args.seed}: {exc}", markup=False)
        return ExitCode.USAGE
    try:
        await sandbox.start()
    except OSError as exc:
        await sandbox.aclose()
        err.print(
            f"assetpay sandbox: cannot listen on {args.host}:{args.port}: {exc}", markup=False
        )
        return ExitCode.USAGE
    try:
        with (
            _stop_on_sigterm() as stopped
        ):  # before printing: whoever reads the URL may stop us at once
            world = describe_world(sandbox)
            if args.json:
                write_json_line(sys.stdout, world)
            else:
                _print_world(world)
            await _until(stopped)
    finally:
        await sandbox.aclose()
    console(stderr=True).print("sandbox stopped", markup=False)
    return ExitCode.OK


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM while the block runs (where the loop supports signal handlers)."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    try:
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or not Unix
        yield stopped
        return
    try:
        yield stopped
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _until(stopped: asyncio.Event) -> None:
    """Wait for ``stopped``, or for Ctrl-C (asyncio.run cancels the main task): both are a normal stop."""
    task = asyncio.current_task()
    try:
        await stopped.wait()
    except asyncio.CancelledError:
        if task is not None:
            task.uncancel()
