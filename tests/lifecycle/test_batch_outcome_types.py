"""``CancelOutcome`` for programs: ``trade_id``/``item_id`` are ``str``, and ``to_dict()`` is JSON-ready (issue 22)."""

from __future__ import annotations

import json
import typing
import uuid
from pathlib import Path

import pytest
from mypy import api as mypy_api

from assetpay_async import (
    BatchStoppedError,
    CancelBatch,
    CancelOutcome,
    CancelResult,
    CancelStatus,
    NotCancellableError,
    OutcomeDetail,
    OutcomeKind,
)
from assetpay_async.testing import run_virtual
from tests.support.core import ScriptedServer, echo_cancel, make_token, new_session

SECRET = make_token()


def test_trade_and_item_ids_are_typed_and_stored_as_str() -> None:
    hints = typing.get_type_hints(CancelOutcome)
    assert (hints["trade_id"], hints["item_id"]) == (str, str)
    trade, item = uuid.uuid4(), uuid.uuid4()

    async def main() -> None:
        async with ScriptedServer() as server:
            server.respond = echo_cancel
            async with new_session(server.url) as session:
                outcomes = await CancelBatch(
                    session.client(make_token()), [(trade, item), ("order-7", "x")]
                ).run()
        assert (outcomes[0].trade_id, outcomes[0].item_id) == (str(trade), str(item))
        assert (outcomes[1].trade_id, outcomes[1].item_id) == ("order-7", "x")  # as given

    run_virtual(main())


def test_mypy_strict_accepts_following_an_outcome(tmp_path: Path) -> None:
    program = tmp_path / "follow.py"
    program.write_text(
        "from assetpay_async import AssetPayClient, CancelOutcome\n\n\n"
        "async def follow(client: AssetPayClient, o: CancelOutcome) -> None:\n"
        "    await client.wait_for_item(o.trade_id, o.item_id)\n"
    )
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", str(program)]
    )
    assert status == 0, out + err


def test_to_dict_is_json_ready_with_enum_values_and_typed_errors() -> None:
    cancelled = CancelOutcome(
        0,
        "t",
        "i",
        OutcomeKind.CANCELLED,
        result=CancelResult("t", "i", CancelStatus.CANCELLED, "ext", "req-1"),
        detail=OutcomeDetail.FROM_JOURNAL,
    )
    error = NotCancellableError(
        f"refused ({SECRET})",
        http_status=400,
        code=28,
        key="TRADE_NOT_CANCELLABLE",
        request_id=None,
    )
    failed = CancelOutcome(1, "t", "j", OutcomeKind.FAILED, error=error, duplicate_of=0)
    stopped = CancelOutcome(
        2,
        "t",
        "k",
        OutcomeKind.NOT_ATTEMPTED,
        error=BatchStoppedError("a refused token", cause=error),
        detail=OutcomeDetail.BATCH_STOPPED,
    )
    first = cancelled.to_dict()
    assert json.loads(json.dumps(first)) == first
    assert first == {
        "index": 0,
        "trade_id": "t",
        "item_id": "i",
        "kind": "cancelled",
        "result": {
            "trade_id": "t",
            "item_id": "i",
            "status": "cancelled",
            "external_id": "ext",
            "request_id": "req-1",
        },
        "error": None,
        "duplicate_of": None,
        "reschedules": 0,
        "detail": "from-journal",
    }
    second = failed.to_dict()
    assert second["error"] == {
        "type": "NotCancellableError",
        "key": "TRADE_NOT_CANCELLABLE",
        "code": 28,
        "message": "refused ([redacted])",
        "ambiguous": False,
    }
    assert (second["kind"], second["duplicate_of"]) == ("failed", 0)
    third = stopped.to_dict()
    assert third["error"]["type"] == "BatchStoppedError"
    assert third["error"]["key"] is None
    for body in (first, second, third):
        assert SECRET not in json.dumps(body)


@pytest.mark.parametrize("kind", list(OutcomeKind))
def test_every_kind_serialises(kind: OutcomeKind) -> None:
    body = CancelOutcome(0, "t", "i", kind).to_dict()
    assert json.loads(json.dumps(body))["kind"] == kind.value
