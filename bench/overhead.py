"""Overhead per cancel: the SDK against raw aiohttp doing the same POST and JSON decode, in one run.

Both sides send the same request (``POST .../cancel`` with ``Authorization: Bearer``, ``Accept`` and a fresh
``X-Request-Id``) one at a time over a kept-alive loopback connection, read the body and decode the JSON; the
SDK also pays its limiter (the quota is out of the way: ``Quota(10**9, 1)``), its request builder, response
decoder and result model. Two servers:

- ``sandbox``: the AssetPay sandbox (token check, quota model, rules);
- ``bare handler``: a bare aiohttp handler answering a canned envelope, so the server's share shrinks and the
  SDK's own cost shows more plainly.

Each runs first in its own process (``python -m bench._server``), as AssetPay does for a user: the client's
loop then waits while the server works, as it would on a real network. Then, as a second row only, in the
client's own process and loop, where the server's work and the client's add up on one core.

One run is a series of short paired rounds, SDK and raw calls back to back (each side first in turn), so load
that comes and goes on a shared machine hits both sides of a pair alike; a run's ratio is the median of its
pairs' ratios, its times the median round of each side. Several runs give the ratio's min / median / max.
``--profile`` adds cProfile's view of the SDK path.

Run: ``nox -s bench -- overhead`` or ``python -m bench overhead [--calls 100] [--rounds 15] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from aiohttp import web

from assetpay_async import AssetPayClient, AssetPaySession, Quota
from assetpay_async.sandbox import Sandbox

from ._common import spread, stamp

UNBOUNDED = Quota(10**9, 1.0)
Call = Callable[[], Awaitable[object]]
ROOT = str(Path(__file__).resolve().parents[1]) + "/"
Target = tuple[str, str, str, str]
"""(base url, client token, trade id, item id)"""


@asynccontextmanager
async def sandbox_target() -> AsyncIterator[Target]:
    """The sandbox with one pending cancel (repeating it answers 200 again): (base url, token, trade, item)."""
    async with Sandbox(seed=1, revert_delay=10**9) as sb:
        merchant = sb.add_merchant("verified", quotas={"cancel-item": UNBOUNDED})
        user = sb.add_user(merchant)
        trade = sb.add_trade(user, items=1, age=3600)
        yield sb.base_url, sb.token(user), trade.id, trade.items[0].id


@asynccontextmanager
async def static_target(token: str) -> AsyncIterator[Target]:
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


def static_token() -> str:
    """A client token in AssetPay's shape (a sandbox that never starts mints it; the bare handler ignores it)."""
    sb = Sandbox(seed=1)
    return sb.token(sb.add_user(sb.add_merchant("verified")))


@asynccontextmanager
async def in_process(kind: str) -> AsyncIterator[Target]:
    """The server ``kind`` (``sandbox`` or ``static``) in this process and loop."""
    if kind == "sandbox":
        async with sandbox_target() as target:
            yield target
    else:
        async with static_target(static_token()) as target:
            yield target


@asynccontextmanager
async def own_process(kind: str) -> AsyncIterator[Target]:
    """The server ``kind`` in a child interpreter (``python -m bench._server KIND``), stopped on exit."""
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench._server",
        kind,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    if server.stdin is None or server.stdout is None:
        raise RuntimeError("no pipes to the server process")
    try:
        line = await server.stdout.readline()
        if not line:
            raise RuntimeError(f"the {kind} server process exited before it listened")
        found = json.loads(line)
        yield found["base_url"], found["token"], found["trade_id"], found["item_id"]
    finally:
        server.stdin.close()  # the server stops at the end of its input
        try:
            await asyncio.wait_for(server.wait(), 10)
        except TimeoutError:
            server.kill()
            await server.wait()


async def compare(
    target: Target, calls: int, rounds: int, runs: int
) -> tuple[list[float], list[float], list[float]]:
    """Per run: the median SDK round, the median raw round (us/call) and their ratio."""
    base_url, token, trade_id, item_id = target
    url = f"{base_url}/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
    sdk_medians, raw_medians, ratios = [], [], []
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100, limit_per_host=0)) as http,
        AssetPaySession(cancel_quota=UNBOUNDED, base_url=base_url, latency_margin=0.0) as session,
    ):
        sdk, raw = sdk_call(session.client(token), trade_id, item_id), raw_call(http, url, token)
        await timed(sdk, 50)  # warm up: connections, caches
        await timed(raw, 50)
        for _ in range(runs):
            sdk_times, raw_times, pair_ratios = [], [], []
            for n in range(rounds):
                # Adjacent rounds form a pair, each side first in turn: load that comes and goes on a
                # shared machine hits both sides of a pair alike.
                if n % 2:
                    raw_times.append(await timed(raw, calls))
                    sdk_times.append(await timed(sdk, calls))
                else:
                    sdk_times.append(await timed(sdk, calls))
                    raw_times.append(await timed(raw, calls))
                pair_ratios.append(sdk_times[-1] / raw_times[-1])
            sdk_medians.append(statistics.median(sdk_times))
            raw_medians.append(statistics.median(raw_times))
            ratios.append(statistics.median(pair_ratios))
    return sdk_medians, raw_medians, ratios


async def profile(target: Target, calls: int) -> str:
    """cProfile of ``calls`` SDK calls: the SDK's own functions by own time."""
    base_url, token, trade_id, item_id = target
    async with AssetPaySession(
        cancel_quota=UNBOUNDED, base_url=base_url, latency_margin=0.0
    ) as session:
        sdk = sdk_call(session.client(token), trade_id, item_id)
        await timed(sdk, 50)
        profiler = cProfile.Profile()
        profiler.enable()
        await timed(sdk, calls)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(r"assetpay_async/(?!sandbox)", 12)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(line.replace(ROOT, "") for line in lines[start:] if line.strip())


SERVERS = {"sandbox": "sandbox", "static": "bare handler"}
PLACES = {
    "own process": own_process,
    "same process and loop (second row only)": in_process,
}


async def run(calls: int, rounds: int, runs: int, with_profile: bool, argv: list[str]) -> int:
    rows = []
    for place, target_of in PLACES.items():
        for kind, label in SERVERS.items():
            async with target_of(kind) as target:
                sdk, raw, ratios = await compare(target, calls, rounds, runs)
            rows.append((label, place, sdk, raw, ratios))
    print(
        stamp("overhead", argv)
        + f" One cancel at a time over loopback; {runs} runs, each the median of {rounds} paired"
        f" rounds of {calls} calls per side."
    )
    print()
    print(
        "| server | where it runs | SDK (us/call) | raw aiohttp (us/call) | SDK - raw (us) "
        "| ratio SDK / raw: min / median / max |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for label, place, sdk, raw, ratios in rows:
        s, r = statistics.median(sdk), statistics.median(raw)
        print(
            f"| {label} | {place} | {s:.0f} | {r:.0f} | {s - r:.0f} | {spread(ratios, '{:.3f}')} |"
        )
    if with_profile:
        async with own_process("static") as target:
            report = await profile(target, calls)
        print(
            f"\ncProfile of {calls} SDK calls against the bare handler in its own process,"
            " the SDK's functions by own time:\n"
        )
        print("```text\n" + report + "\n```")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench overhead", description=__doc__)
    parser.add_argument("--calls", type=int, default=100, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=15, help="paired rounds in one run")
    parser.add_argument("--runs", type=int, default=5, help="paired runs; min/median/max of them")
    parser.add_argument("--profile", action="store_true", help="add a cProfile of the SDK path")
    parser.add_argument("--smoke", action="store_true", help="2 runs of 2 rounds of 50 calls")
    args = parser.parse_args(argv)
    if args.smoke:
        args.calls, args.rounds, args.runs = 50, 2, 2
    return asyncio.run(run(args.calls, args.rounds, args.runs, args.profile, argv))
