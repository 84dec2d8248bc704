"""An aiohttp service: a cancel endpoint for your frontend and the callback endpoint for AssetPay.

    export ASSETPAY_CLIENT_TOKEN=...  ASSETPAY_API_SECRET=...  ASSETPAY_TIER=verified  # ASSETPAY_BASE_URL: sandbox
    python examples/web_service.py --port 8000

AssetPay posts the callbacks to the URL saved for your merchant: ``http://<this host>:8000/assetpay/callback``.
Against the sandbox, start it with that URL and take the token and the secret from what it prints::

    assetpay sandbox --port 8080 --callback-url http://127.0.0.1:8000/assetpay/callback
    export ASSETPAY_BASE_URL=http://127.0.0.1:8080 ASSETPAY_API_SECRET=<the merchant's secret>
    export ASSETPAY_CLIENT_TOKEN=<a user's token>

* ``POST /withdrawals/{trade_id}/items/{item_id}/cancel`` cancels through the one ``AssetPaySession`` of the
  process: concurrent requests queue in its limiter instead of drawing 429s, and a request waits at most
  ``MAX_QUEUE_WAIT`` seconds for quota before answering 503 with ``Retry-After``.
* ``POST /assetpay/callback`` verifies AssetPay's signature and refunds an item once it turns ``reverted``.

One client token here (one end user); a real service looks the user's token up per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Final

import attrs
from aiohttp import web

from assetpay_async import (
    DEFAULT_BASE_URL,
    AssetPayClient,
    AssetPayError,
    AssetPaySession,
    CancelTooSoonError,
    ForbiddenError,
    InvalidRequestError,
    ItemNotFoundError,
    NotCancellableError,
    QueueTimeoutError,
    TradeNotFoundError,
    TradeStatus,
)
from assetpay_async.callbacks import CallbackEvent, callback_handler

log = logging.getLogger("assetpay_web")

MAX_QUEUE_WAIT: Final = 10.0


@attrs.frozen
class Config:
    token: str = attrs.field(repr=False)
    api_secret: str = attrs.field(repr=False)
    tier: str = "verified"
    base_url: str | None = None

    @classmethod
    def from_env(cls) -> Config:
        return cls(
            token=os.environ["ASSETPAY_CLIENT_TOKEN"],
            api_secret=os.environ["ASSETPAY_API_SECRET"],
            tier=os.environ.get("ASSETPAY_TIER", "verified"),
            base_url=os.environ.get("ASSETPAY_BASE_URL"),
        )


CLIENT: Final = web.AppKey("client", AssetPayClient)
REFUNDED: Final = web.AppKey("refunded", set[tuple[str, str]])

_STATUS_OF: Final[tuple[tuple[type[AssetPayError], int], ...]] = (
    (InvalidRequestError, 400),
    (ForbiddenError, 404),  # not this user's trade: do not tell them it exists
    (ItemNotFoundError, 404),
    (TradeNotFoundError, 404),
    (CancelTooSoonError, 409),
    (NotCancellableError, 409),
)


async def cancel(request: web.Request) -> web.Response:
    client = request.app[CLIENT]
    trade_id, item_id = request.match_info["trade_id"], request.match_info["item_id"]
    try:
        result = await client.cancel_withdrawal_item(
            trade_id, item_id, max_queue_wait=MAX_QUEUE_WAIT
        )
    except QueueTimeoutError:
        return web.json_response(
            {"error": "busy, try again"}, status=503, headers={"Retry-After": "10"}
        )
    except AssetPayError as exc:
        status = next((code for cls, code in _STATUS_OF if isinstance(exc, cls)), 502)
        body = {
            "error": getattr(exc, "key", None) or type(exc).__name__,
            "outcome_unknown": exc.ambiguous,
        }
        return web.json_response(body, status=status)
    return web.json_response(
        {
            "status": result.status.value,
            "trade_id": str(result.trade_id),
            "item_id": str(result.item_id),
        },
        status=202,  # accepted: the refund happens when the 'reverted' callback arrives
    )


def build_app(config: Config) -> web.Application:
    app = web.Application()
    refunded: set[tuple[str, str]] = set()
    app[REFUNDED] = refunded

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with AssetPaySession(
            tier=config.tier, base_url=config.base_url or DEFAULT_BASE_URL
        ) as session:
            app[CLIENT] = session.client(config.token)
            yield

    async def on_event(event: CallbackEvent) -> None:
        for item in event.trade.items:
            key = (event.trade.id, item.id)
            if item.status == TradeStatus.REVERTED and key not in refunded:
                refunded.add(key)  # your database: credit the user in the same transaction
                log.info("refunded item %s of trade %s", item.id, event.trade.id)

    app.cleanup_ctx.append(session_ctx)
    app.router.add_post("/withdrawals/{trade_id}/items/{item_id}/cancel", cancel)
    app.router.add_post("/assetpay/callback", callback_handler(config.api_secret, on_event))
    return app


async def main(config: Config, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(build_app(config))
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log.info("listening on http://%s:%d", host, port)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(Config.from_env(), host=args.host, port=args.port))
    return 0


if __name__ == "__main__":
    sys.exit(cli())
