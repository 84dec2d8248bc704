"""Batches take the same refs as single calls: externalIds and listing ids, deduped on the encoded path."""

from __future__ import annotations

import datetime as dt
from collections import Counter

from assetpay_async import InvalidRequestError, InvalidResponseError, OutcomeKind
from assetpay_async.testing import run_virtual
from tests.support.core import Reply, ScriptedServer, make_token, new_session, success_body
from tests.support.lifecycle import lifecycle_world

HOUR = dt.timedelta(hours=1)


def test_a_batch_of_external_ids_and_listing_ids() -> None:
    async def main() -> None:
        async with lifecycle_world() as w:
            trade = w.sandbox.add_trade(
                w.user,
                items=3,
                age=HOUR,
                external_id="Order/77",
                listing_ids=True,
                item_external_ids=["x-1", "X-1", "x 3"],
            )
            pairs: list[tuple[object, object]] = [
                ("Order/77", "x-1"),
                ("Order/77", "X-1"),  # another item: externalIds are case-sensitive
                (trade.id, trade.items[2].id),  # the listing id of the third
                ("Order/77", "x-1"),  # a duplicate of the first: sent once
                ("Order/77", ".."),  # refused before sending
            ]
            outcomes = await w.session.client(w.token).cancel_withdrawal_items(pairs)
            assert [o.kind for o in outcomes] == [OutcomeKind.CANCELLED] * 4 + [OutcomeKind.FAILED]
            assert [o.result.item_id for o in outcomes[:4] if o.result] == [
                trade.items[0].id,
                trade.items[1].id,
                trade.items[2].id,
                trade.items[0].id,
            ]
            assert outcomes[3].duplicate_of == 0
            assert type(outcomes[4].error) is InvalidRequestError
            sent = Counter(r.path for r in w.sandbox.requests)
            assert sent == {
                "/client/trading/withdraw/Order%2F77/items/x-1/cancel": 1,
                "/client/trading/withdraw/Order%2F77/items/X-1/cancel": 1,
                f"/client/trading/withdraw/{trade.id}/items/{trade.items[2].id}/cancel": 1,
            }

    run_virtual(main())


async def test_a_batch_answer_naming_another_item_is_unknown() -> None:
    async with ScriptedServer() as server:
        server.script(
            Reply(
                200,
                success_body(
                    {"tradeId": "t", "itemId": "i-2", "externalId": "e-2", "status": "cancelled"}
                ),
            )
        )
        async with new_session(server.url) as session:
            [outcome] = await session.client(make_token()).cancel_withdrawal_items([("t", "e-1")])
    # AssetPay accepted a cancel, of an item the batch did not name: the pair's outcome is unknown.
    assert outcome.kind is OutcomeKind.UNKNOWN
    assert isinstance(outcome.error, InvalidResponseError)
