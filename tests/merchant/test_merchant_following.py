"""Following with the merchant scope (issue 21): with an API key, ``wait_for_items`` and the shared poller read
through ``GET /secure/trades/{refs}``, 100 trades a request, under both readings of whether that route returns
the merchant's clients' trades (UNCONFIRMED); what it does not return is read in the client scope, and what it
has shown is remembered for the session."""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest

from assetpay_async import AssetPaySession, FollowedItem
from assetpay_async.sandbox import Sandbox, SandboxBehavior
from assetpay_async.sandbox._state import SandboxTrade
from tests.support.core import (
    RecordedRequest,
    Reply,
    ScriptedServer,
    api_error,
    make_token,
    new_session,
    success_body,
)

from ._world import API_KEY, HOUR, merchant_world

BATCH = "/secure/trades/"
FINAL_AFTER = 20.0  # virtual seconds until every followed item is reverted


def _batch_reads(sandbox: Sandbox) -> list[float]:
    return [r.time for r in sandbox.requests if r.path.startswith(BATCH)]


def _client_reads(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.path.startswith("/client/trades"))


def _rounds(times: list[float], gap: float = 0.5) -> list[int]:
    """Requests per round: requests less than ``gap`` seconds apart belong to one round."""
    rounds: list[int] = []
    last = None
    for time in sorted(times):
        if last is None or time - last > gap:
            rounds.append(0)
        rounds[-1] += 1
        last = time
    return rounds


async def _revert_later(trades: list[SandboxTrade]) -> None:
    await asyncio.sleep(FINAL_AFTER)
    for trade in trades:
        for item in trade.items:
            item.status = "reverted"


async def _follow_1000(include_clients: bool) -> tuple[Sandbox, list[FollowedItem]]:
    """1,000 items in 1,000 trades of 100 users, followed at once until they revert 20 s later."""
    behavior = SandboxBehavior(secure_trades_include_clients=include_clients)
    async with merchant_world(behavior=behavior) as w:
        users = [w.sandbox.add_user(w.merchant) for _ in range(100)]
        trades = [[w.sandbox.add_trade(user, age=HOUR) for _ in range(10)] for user in users]
        reverting = asyncio.create_task(_revert_later([t for ts in trades for t in ts]))
        waits = [
            w.session.client(w.sandbox.token(user)).wait_for_items(
                [(t.id, t.items[0].id) for t in ts], timeout=120
            )
            for user, ts in zip(users, trades, strict=True)
        ]
        outcomes = [o for many in await asyncio.gather(*waits) for o in many]
        await reverting
        return w.sandbox, outcomes


async def test_following_1000_trades_takes_at_most_10_batch_reads_a_round() -> None:
    sandbox, outcomes = await _follow_1000(include_clients=True)
    assert len(outcomes) == 1000
    assert all(o.final and o.status == "reverted" for o in outcomes)
    rounds = _rounds(_batch_reads(sandbox))
    assert len(rounds) >= 5  # polled until the revert, 20 s later
    assert max(rounds) <= 10
    assert _client_reads(sandbox) == 0  # the batch route returned every trade


async def test_when_the_route_returns_no_clients_trades_every_item_ends_final_in_the_client_scope() -> (
    None
):
    sandbox, outcomes = await _follow_1000(include_clients=False)
    assert len(outcomes) == 1000
    assert all(o.final and o.status == "reverted" for o in outcomes)
    # One request showed the route serves none of the clients' trades: never asked again this session.
    assert len(_batch_reads(sandbox)) == 1
    assert _client_reads(sandbox) > 0


async def test_the_poller_stays_within_its_share_of_the_merchant_read_quota() -> None:
    async with merchant_world(tier="unverified") as w:  # 100 merchant reads a minute
        trades = [w.sandbox.add_trade(w.user, age=HOUR) for _ in range(3)]
        client = w.session.client(w.sandbox.token(w.user))
        outcomes = await client.wait_for_items(
            [(t.id, t.items[0].id) for t in trades], timeout=300, max_interval=1.0
        )
        assert all(not o.final for o in outcomes)  # never final: followed for five minutes
        assert w.sandbox.quota_share(w.merchant, "merchant-read") <= 0.5
        assert len(_batch_reads(w.sandbox)) >= 0.5 * 100 * 5 * 0.9  # and it does use its share


# -- scripted servers: the route's answers that the sandbox does not give ---------------------------------


def _trade(trade_id: str, status: str, source: str = "client") -> dict[str, Any]:
    return {
        "id": trade_id,
        "type": "withdraw",
        "status": "active",
        "source": source,
        "game": "730",
        "createdAt": "2026-07-31T12:00:00.000Z",
        "items": [{"id": f"{trade_id}-i0", "status": status}],
    }


class _Server:
    """Trades ``t-0``..``t-{n-1}`` whose items revert on their third read; the batch route answers as
    ``batch`` says (a reply, or the refs to return)."""

    def __init__(self, n: int, batch: Callable[[int, list[str]], Reply | list[str]]) -> None:
        self.reads: dict[str, int] = {f"t-{i}": 0 for i in range(n)}
        self.batch = batch
        self.batch_refs: list[list[str]] = []

    def _json(self, ref: str) -> dict[str, Any]:
        self.reads[ref] += 1
        return _trade(ref, "reverted" if self.reads[ref] >= 3 else "active")

    def __call__(self, request: RecordedRequest) -> Reply:
        path = urllib.parse.urlsplit(request.target).path
        if path.startswith(BATCH):
            refs = [urllib.parse.unquote(r) for r in path[len(BATCH) :].split(",")]
            self.batch_refs.append(refs)
            answer = self.batch(len(self.batch_refs), refs)
            if isinstance(answer, Reply):
                return answer
            return Reply(200, success_body([self._json(ref) for ref in answer]))
        if path == "/client/trades":  # one page holding every trade
            page = {"items": [self._json(ref) for ref in self.reads], "nextCursor": None}
            return Reply(200, success_body(page))
        ref = path.rsplit("/", 1)[1]  # GET /client/trades/{ref}
        return Reply(200, success_body(self._json(ref)))


async def _follow_scripted(server: _Server, n: int) -> list[FollowedItem]:
    async with ScriptedServer() as scripted:
        scripted.respond = server
        session: AssetPaySession
        async with new_session(scripted.url, api_key=API_KEY, merchant_id="merchant-42") as session:
            client = session.client(make_token())
            return await client.wait_for_items(
                [(f"t-{i}", f"t-{i}-i0") for i in range(n)], timeout=60, max_interval=1.0
            )


async def test_a_ref_the_route_answered_without_is_read_in_the_client_scope_from_then_on() -> None:
    server = _Server(3, lambda _, refs: [ref for ref in refs if ref != "t-2"])
    outcomes = await _follow_scripted(server, 3)
    assert all(o.final for o in outcomes)
    assert server.batch_refs[0] == ["t-0", "t-1", "t-2"]
    assert all("t-2" not in refs for refs in server.batch_refs[1:])  # never asked again
    assert len(server.batch_refs) >= 3  # t-0 and t-1 kept coming through the route


@pytest.mark.parametrize(
    "refusal",
    [
        api_error(403, "API_KEY_SCOPE_DENIED", 1903),
        api_error(401, "INVALID_API_KEY", 1901),
        api_error(404, "NOT_FOUND", 1003, message="Cannot GET /secure/trades/x"),
    ],
    ids=["scope-denied", "key-refused", "route-missing"],
)
async def test_a_refused_route_is_not_asked_again_and_every_item_ends_final(refusal: Reply) -> None:
    server = _Server(3, lambda _, refs: refusal)
    outcomes = await _follow_scripted(server, 3)
    assert all(o.final for o in outcomes)
    assert len(server.batch_refs) == 1


async def test_a_transient_failure_reads_that_round_in_the_client_scope_and_keeps_the_route() -> (
    None
):
    failing = api_error(503, "SERVICE_UNAVAILABLE", 1500)
    # The request path retries a read after a 5xx (3 retries): the first round's 4 attempts all fail.
    server = _Server(3, lambda n, refs: failing if n <= 4 else refs)
    outcomes = await _follow_scripted(server, 3)
    assert all(o.final for o in outcomes)
    assert len(server.batch_refs) >= 5  # asked again after the failure
    assert server.batch_refs[-1] == ["t-0", "t-1", "t-2"]


async def test_an_answer_with_none_of_the_clients_trades_ends_the_route_for_the_session() -> None:
    server = _Server(3, lambda _, refs: [])
    async with ScriptedServer() as scripted:
        scripted.respond = server
        async with new_session(scripted.url, api_key=API_KEY, merchant_id="merchant-42") as session:
            client = session.client(make_token())
            first = await client.wait_for_items([("t-0", "t-0-i0")], timeout=60, max_interval=1.0)
            second = await client.wait_for_items(
                [("t-1", "t-1-i0"), ("t-2", "t-2-i0")], timeout=60, max_interval=1.0
            )
    assert all(o.final for o in first + second)
    assert server.batch_refs == [["t-0"]]  # the later call's trades never went to the route


@pytest.mark.parametrize("include_clients", [True, False])
async def test_clients_of_client_for_follow_through_the_batch_route_or_fall_back(
    include_clients: bool,
) -> None:
    """Merchant mode proper: each user's token minted by the session, the trades followed by user."""
    behavior = SandboxBehavior(secure_trades_include_clients=include_clients)
    async with merchant_world(behavior=behavior) as w:
        users = [w.sandbox.add_user(w.merchant) for _ in range(5)]
        trades = [
            [w.sandbox.add_trade(user, items=2, age=HOUR) for _ in range(10)] for user in users
        ]
        reverting = asyncio.create_task(_revert_later([t for ts in trades for t in ts]))
        waits = [
            w.session.client_for(user.steam_id, user.trade_url).wait_for_items(
                [(t.id, i.id) for t in ts for i in t.items], timeout=120
            )
            for user, ts in zip(users, trades, strict=True)
        ]
        outcomes = [o for many in await asyncio.gather(*waits) for o in many]
        await reverting
        assert len(outcomes) == 100
        assert all(o.final for o in outcomes)
        batch = _batch_reads(w.sandbox)
        if include_clients:
            assert max(_rounds(batch)) == 1  # 50 trades of 5 users: one request a round
            assert _client_reads(w.sandbox) == 0
        else:
            assert len(batch) == 1
            assert _client_reads(w.sandbox) > 0
