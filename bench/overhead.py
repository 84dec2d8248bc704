"""Overhead per cancel: the SDK against raw aiohttp doing the same POST and JSON decode, in one run.

Both sides send the same request (``POST .../cancel`` with ``Authorization: Bearer``, ``Accept`` and a fresh
``X-Request-Id``) one at a time over a kept-alive loopback connection, read the body and decode the JSON; the
SDK also pays its limiter (the quota is out of the way: ``Quota(10**9, 1)``), its request builder, response
decoder and result model. Two servers, in the same process and loop:

- ``sandbox``: the AssetPay sandbox (token check, quota model, rules): what the brief asks for;
- ``static``: a bare aiohttp handler answering a canned envelope, so the server's share shrinks and the SDK's
  own cost shows more plainly.

Rounds alternate SDK and raw to cancel out drift; the median round counts. Then cProfile shows where the SDK
path spends its time.

Run: ``nox -s bench -- overhead`` or ``python -m bench overhead [--calls 400] [--rounds 7]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import platform
import pstats
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web

from assetpay_async import AssetPayClient, AssetPaySession, Quota
from assetpay_async.sandbox import Sandbox

UNBOUNDED = Quota(10**9, 1.0)
Call = Callable[[], Awaitable[object]]


@asynccontextmanager
async def sandbox_target() -> AsyncIterator[tuple[str, str, str, str]]:
    """The sandbox with one pending cancel (repeating it answers 200 again): (base url, token, trade, item)."""
    async with Sandbox(seed=1, revert_delay=10**9) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": UNBOUNDED})
        user = sb.add_user(merchant)
        trade = sb.add_trade(user, items=1, age=3600)
        yield sb.base_url, sb.token(user), trade.id, trade.items[0].id


@asynccontextmanager
async def static_target(token: str) -> AsyncIterator[tuple[str, str, str, str]]:
    """A bare aiohttp server answering every cancel with the same success envelope."""
    trade_id, item_id = str(uuid.uuid4()), str(uuid.uuid4())
    body = json.dumps(
        {
            "requestId": "r",
            "success": True,
            "data": {"tradeId": trade_id, "itemId": item_id, "status": "cancelled"},
        }
    ).encode()

    async def cancel(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/client/trading/withdraw/{t}/items/{i}/cancel", cancel)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", token, trade_id, item_id
    finally:
        await runner.cleanup()


def raw_call(http: aiohttp.ClientSession, url: str, token: str) -> Call:
    async def call() -> object:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "X-Request-Id": str(uuid.uuid4()),
        }
        async with http.post(url, headers=headers) as response:
            body = await response.read()
        data = json.loads(body)["data"]
        return (data["tradeId"], data["itemId"], data["status"])

    return call


def sdk_call(client: AssetPayClient, trade_id: str, item_id: str) -> Call:
    async def call() -> object:
        return await client.cancel_withdrawal_item(trade_id, item_id)

    return call


async def timed(call: Call, calls: int) -> float:
    """Microseconds per call, ``calls`` sequential calls."""
    started = time.perf_counter()
    for _ in range(calls):
        await call()
    return (time.perf_counter() - started) / calls * 1e6


async def compare(
    target: tuple[str, str, str, str], calls: int, rounds: int
) -> tuple[float, float, str]:
    base_url, token, trade_id, item_id = target
    url = f"{base_url}/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, limit_per_host=0)) as http,
        AssetPaySession(cancel_quota=UNBOUNDED, base_url=base_url, latency_margin=0.0) as session,
    ):
        sdk, raw = sdk_call(session.client(token), trade_id, item_id), raw_call(http, url, token)
        await timed(sdk, 50)  # warm up: connections, caches
        await timed(raw, 50)
        sdk_times, raw_times = [], []
        for _ in range(rounds):
            sdk_times.append(await timed(sdk, calls))
            raw_times.append(await timed(raw, calls))
        profiler = cProfile.Profile()
        profiler.enable()
        await timed(sdk, calls)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(r"assetpay_async/(?!sandbox)", 12)
    return statistics.median(sdk_times), statistics.median(raw_times), out.getvalue()


def _profile_lines(report: str) -> str:
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line for line in lines[start:] if line.strip())


async def run(calls: int, rounds: int) -> int:
    print(
        f"# overhead: one cancel at a time over loopback (Python {platform.python_version()}, ",
        end="",
    )
    print(f"aiohttp {aiohttp.__version__}); {rounds} rounds of {calls} calls, median round")
    print()
    print("| server | SDK (us/call) | raw aiohttp (us/call) | SDK - raw (us) | ratio SDK / raw |")
    print("|---|---:|---:|---:|---:|")
    profiles = []
    async with sandbox_target() as target:
        sdk, raw, profile = await compare(target, calls, rounds)
        print(f"| sandbox | {sdk:.0f} | {raw:.0f} | {sdk - raw:.0f} | {sdk / raw:.3f} |")
        profiles.append(("sandbox", profile))
        token = target[1]
    async with static_target(token) as target:
        sdk, raw, profile = await compare(target, calls, rounds)
        print(f"| static | {sdk:.0f} | {raw:.0f} | {sdk - raw:.0f} | {sdk / raw:.3f} |")
        profiles.append(("static", profile))
    for name, profile in profiles:
        print(
            f"\n# cProfile, SDK path against {name}, top SDK functions by own time ({calls} calls)"
        )
        print(_profile_lines(profile))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__)
    parser.add_argument("--calls", type=int, default=400, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side; the median counts")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.calls, args.rounds))
