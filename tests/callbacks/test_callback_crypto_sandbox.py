"""End to end: the sandbox sends crypto callbacks and bodies of new shapes; callback_handler decodes them into
their own events, decides crypto approvals with on_approval, and never answers a signed delivery with a 4xx
for its shape. Runs on virtual time."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestServer

from assetpay_async.callbacks import (
    ApprovalDecision,
    ApprovalRequest,
    CallbackEvent,
    CryptoDepositEvent,
    CryptoWithdrawalEvent,
    OtherEvent,
    UnknownCallbackEvent,
    callback_handler,
)
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual

PATH = "/assetpay/callback"
SECRET = "sk_crypto_secret"


class Merchant:
    """The merchant's hooks: records what arrived, approves withdrawals under 100."""

    def __init__(self) -> None:
        self.trades: list[CallbackEvent] = []
        self.others: list[OtherEvent] = []
        self.approvals: list[ApprovalRequest] = []

    async def on_event(self, event: CallbackEvent) -> None:
        self.trades.append(event)

    async def on_other(self, event: OtherEvent) -> None:
        self.others.append(event)

    async def on_approval(self, event: ApprovalRequest) -> ApprovalDecision:
        self.approvals.append(event)
        if isinstance(event, CryptoWithdrawalEvent):
            amount = float(event.withdrawal.data.get("amount", "0"))
            if amount >= 100:
                return ApprovalDecision.reject("over the crypto limit")
        return ApprovalDecision.approve()


def test_crypto_and_unknown_callbacks_end_to_end() -> None:
    hooks = Merchant()

    async def main() -> Sandbox:
        async with Sandbox(seed=5) as sb:
            app = web.Application()
            app.router.add_post(
                PATH,
                callback_handler(
                    SECRET,
                    hooks.on_event,
                    on_approval=hooks.on_approval,
                    on_other=hooks.on_other,
                    now=sb.clock.wall,
                ),
            )
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            try:
                merchant = sb.add_merchant(callback_url=str(server.make_url(PATH)), secret=SECRET)
                small = await sb.crypto_withdrawal(merchant, withdrawal_id="cw-1", amount="12.5")
                large = await sb.crypto_withdrawal(merchant, withdrawal_id="cw-2", amount="250")
                done = await sb.crypto_withdrawal(
                    merchant, withdrawal_id="cw-1", status="completed"
                )
                deposit = await sb.crypto_deposit(merchant, deposit_id="cd-1", txid="0xabc")
                new_shape = await sb.send_callback(merchant, {"refund": {"id": "r-1"}})
                assert (small, large, done, deposit, new_shape) == (True,) * 5
            finally:
                await server.close()
        return sb

    sb = run_virtual(main())
    answers = [(a.kind, a.trade_id, a.status, a.rejected) for a in sb.deliveries]
    # The rejection is a 200 whose body rejects: AssetPay reads it as a rejection and does not retry. The body
    # of a shape the SDK does not know gets it too (it might be a gate), which also acknowledges it.
    assert answers == [
        ("withdrawal", "cw-1", 200, False),
        ("withdrawal", "cw-2", 200, True),
        ("withdrawal", "cw-1", 200, False),
        ("deposit", "cd-1", 200, False),
        ("other", "", 200, True),
    ]
    assert [
        (type(e).__name__, e.withdrawal.id)
        for e in hooks.approvals
        if isinstance(e, CryptoWithdrawalEvent)
    ] == [
        ("CryptoWithdrawalEvent", "cw-1"),
        ("CryptoWithdrawalEvent", "cw-2"),
    ]
    assert [type(e) for e in hooks.others] == [
        CryptoWithdrawalEvent,
        CryptoDepositEvent,
        UnknownCallbackEvent,
    ]
    unknown = hooks.others[2]
    assert isinstance(unknown, UnknownCallbackEvent)
    assert unknown.payload == {"refund": {"id": "r-1"}}
    assert hooks.trades == []
