"""The aiohttp application: routes, the request pipeline (auth, faults, quota, rules) and fault responses."""

from __future__ import annotations

import json
import math
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from aiohttp import web

from assetpay_async._quota import RouteGroup

from . import _effects as effects
from . import _merchant_scope as scope
from . import _rules as rules
from ._faults import Fault, FaultKind
from ._observe import RequestRecord
from ._rules import Answer
from ._tokens import TokenProblem, verify

if TYPE_CHECKING:
    from ._sandbox import Sandbox
    from ._state import Merchant, User

S = TypeVar("S")

__all__ = ["build_app", "listen"]

_HTML_PAGE: Final = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_TOKEN_MESSAGES: Final = {
    TokenProblem.MISSING: "Authorization header with a client token is required",
    TokenProblem.INVALID: "Invalid client token",
    TokenProblem.EXPIRED: "Client token has expired",
}
_CANCEL_PATH: Final = "/client/trading/withdraw/{trade_id}/items/{item_id}/cancel"
# Whole-trade cancel: no published quota of its own, so the sandbox counts it in the item cancel's.
_CANCEL_TRADE_PATH: Final = "/client/trading/withdraw/{trade_id}/cancel"


def build_app(sandbox: Sandbox) -> web.Application:
    """The application serving ``sandbox``'s world."""
    pipeline = _Pipeline(sandbox)
    app = web.Application()

    async def cancel(request: web.Request) -> web.StreamResponse:
        trade_id, item_id = request.match_info["trade_id"], request.match_info["item_id"]
        return await pipeline.serve(
            request,
            RouteGroup.CANCEL_ITEM,
            lambda user: effects.cancel(sandbox, user, trade_id, item_id),
        )

    async def cancel_trade(request: web.Request) -> web.StreamResponse:
        trade_id = request.match_info["trade_id"]
        return await pipeline.serve(
            request,
            RouteGroup.CANCEL_ITEM,
            lambda user: effects.cancel_trade(sandbox, user, trade_id),
        )

    async def list_trades(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        return await pipeline.serve(
            request,
            RouteGroup.TRADES_READ,
            lambda user: rules.list_trades(
                sandbox.trades.values(),
                user,
                query,
                behavior=sandbox.behavior,
                render=sandbox.render,
            ),
        )

    async def get_trade(request: web.Request) -> web.StreamResponse:
        trade_id = request.match_info["trade_id"]
        return await pipeline.serve(
            request,
            RouteGroup.TRADES_READ,
            lambda user: rules.get_trade(
                sandbox.trades, user, trade_id, behavior=sandbox.behavior, render=sandbox.render
            ),
        )

    app.router.add_post(_CANCEL_PATH, cancel)
    app.router.add_post(_CANCEL_TRADE_PATH, cancel_trade)
    app.router.add_get("/client/trades", list_trades)
    if sandbox.behavior.trade_by_id_route:
        app.router.add_get("/client/trades/{trade_id}", get_trade)
    _add_merchant_routes(app, sandbox, pipeline)
    return app


async def listen(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Serve ``app`` on ``host:port`` (0: a free port); the runner knows the address bound."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


_SECURE_TRADES: Final = "/secure/trades/"


def _add_merchant_routes(app: web.Application, sandbox: Sandbox, pipeline: _Pipeline) -> None:
    """The ``api-key`` routes: ``/auth/authenticate-client``, ``/secure/trades``, ``/secure/buy``."""

    async def authenticate(request: web.Request) -> web.StreamResponse:
        checked = scope.check_authenticate_body(await request.read(), sandbox.behavior)

        def handle(merchant: Merchant) -> Answer:
            if isinstance(checked, Answer):
                return checked
            return effects.authenticate_client(sandbox, merchant, *checked)

        return await pipeline.serve_merchant(request, RouteGroup.AUTH, handle)

    async def secure_list(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        return await pipeline.serve_merchant(
            request,
            RouteGroup.MERCHANT_READ,
            lambda m: scope.secure_list(
                sandbox.trades, m.id, query, behavior=sandbox.behavior, render=sandbox.render
            ),
        )

    async def secure_refs(request: web.Request) -> web.StreamResponse:
        refs = scope.split_refs(request.rel_url.raw_path, _SECURE_TRADES)
        return await pipeline.serve_merchant(
            request,
            RouteGroup.MERCHANT_READ,
            lambda m: scope.secure_refs(
                sandbox.trades, m.id, refs, behavior=sandbox.behavior, render=sandbox.render
            ),
        )

    async def buy_cancel_item(request: web.Request) -> web.StreamResponse:
        trade_id, item_id = request.match_info["trade_id"], request.match_info["item_id"]
        return await pipeline.serve_merchant(
            request,
            RouteGroup.CANCEL_ITEM,
            lambda m: effects.secure_cancel(sandbox, m, trade_id, item_id),
        )

    async def buy_cancel(request: web.Request) -> web.StreamResponse:
        trade_id = request.match_info["trade_id"]
        return await pipeline.serve_merchant(
            request,
            RouteGroup.CANCEL_ITEM,
            lambda m: effects.secure_cancel(sandbox, m, trade_id, None),
        )

    app.router.add_post("/auth/authenticate-client", authenticate)
    app.router.add_get("/secure/trades", secure_list)
    app.router.add_get(_SECURE_TRADES + "{refs:.+}", secure_refs)
    app.router.add_post("/secure/buy/{trade_id}/items/{item_id}/cancel", buy_cancel_item)
    app.router.add_post("/secure/buy/{trade_id}/cancel", buy_cancel)


def _json_response(
    answer: Answer, request_id: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=answer.status,
        body=json.dumps(answer.envelope(request_id)).encode(),
        content_type="application/json",
        headers={"X-Request-Id": request_id, **(headers or {})},
    )


def _retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def _drop_connection(request: web.Request) -> None:
    """Close the connection with a TCP reset, so the client sees 'connection reset by peer'."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


class _Pipeline:
    """Every request goes: authenticate, draw faults, count against the quota, apply the rules, answer."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sb = sandbox

    async def serve(
        self, request: web.Request, group: RouteGroup, handle: Callable[[User], Answer]
    ) -> web.StreamResponse:
        """A client-scope route: the client token (``Authorization``) names the caller."""
        return await self._serve(request, group, handle, self._client_token, _user_merchant)

    async def serve_merchant(
        self, request: web.Request, group: RouteGroup, handle: Callable[[Merchant], Answer]
    ) -> web.StreamResponse:
        """A merchant-scope route: the ``api-key`` header names the merchant."""
        return await self._serve(request, group, handle, self._api_key, _merchant_id)

    def _client_token(self, request: web.Request) -> User | Answer:
        sb = self._sb
        claims = verify(request.headers.get("Authorization"), sb._secret_of, sb.clock.unix())
        if claims is TokenProblem.EXPIRED and sb.behavior.expired_token_key == "INVALID_TOKEN":  # noqa: S105
            claims = TokenProblem.INVALID
        if not isinstance(claims, TokenProblem):
            signature = (request.headers.get("Authorization") or "").rpartition(".")[2]
            if sb._revocations.refused(claims, signature):
                claims = TokenProblem.INVALID
        if isinstance(claims, TokenProblem):
            return Answer.fail(401, claims.code, claims.key, _TOKEN_MESSAGES[claims])
        return effects.user_for(sb, claims)

    def _api_key(self, request: web.Request) -> Merchant | Answer:
        value = request.headers.get("api-key")
        if not value:
            return Answer.fail(401, 1900, "MISSING_API_KEY", "The api-key header is required")
        merchant = effects.merchant_by_key(self._sb, value.strip())
        if merchant is None:
            return Answer.fail(401, 1901, "INVALID_API_KEY", "Invalid API key")
        return merchant

    async def _serve(
        self,
        request: web.Request,
        group: RouteGroup,
        handle: Callable[[S], Answer],
        authenticate: Callable[[web.Request], S | Answer],
        merchant_of: Callable[[S], str],
    ) -> web.StreamResponse:
        sb = self._sb
        sent_request_id = request.headers.get("X-Request-Id")
        request_id = sent_request_id or sb._new_request_id()
        arrived = sb.clock.now()
        record = _Recorder(sb._requests, request, group, sent_request_id)
        caller = authenticate(request)
        if isinstance(caller, Answer):
            record(caller.status, caller.key, merchant=None, counted=False, at=arrived)
            return _json_response(caller, request_id)
        merchant_id = merchant_of(caller)
        faults = sb.faults.draw(group, merchant_id)
        kinds = tuple(f.kind.value for f in faults)
        for fault in faults:
            if fault.kind is FaultKind.LATENCY:
                await sb.clock.sleep_until(sb.clock.now() + sb.faults.jitter(fault))
        now = sb.clock.now()
        instead = next((f for f in faults if f.answers_instead), None)
        if instead is not None:
            response = self._fault_answer(request, instead, request_id)
            status = 0 if response is None else response.status
            key = _key_of(response)
            record(status, key, merchant=merchant_id, counted=False, at=now, faults=kinds)
            if response is None:
                raise _Dropped
            return response
        decision = sb._rate_model(merchant_id, group).hit(now)
        if not decision.allowed:
            behavior = sb.behavior
            answer = Answer.fail(
                429, behavior.rate_limited_code, "RATE_LIMITED", "Too many requests"
            )
            headers = _retry_after_header(decision.retry_after) if behavior.retry_after else None
            record(429, "RATE_LIMITED", merchant=merchant_id, counted=True, at=now, faults=kinds)
            return _json_response(answer, request_id, headers)
        answer = handle(caller)
        record(
            0 if _has(faults, FaultKind.RESET_AFTER) else answer.status,
            answer.key,
            merchant=merchant_id,
            counted=True,
            at=now,
            faults=kinds,
        )
        return await self._answer(request, answer, request_id, faults)

    def _fault_answer(
        self, request: web.Request, fault: Fault, request_id: str
    ) -> web.Response | None:
        kind = fault.kind
        if kind is FaultKind.RESET_BEFORE:
            _drop_connection(request)
            return None
        if kind is FaultKind.HTML_5XX:
            status = fault.status or 500
            reason = {
                500: "Internal Server Error",
                502: "Bad Gateway",
                503: "Service Unavailable",
                504: "Gateway Time-out",
            }.get(status, "Error")
            return web.Response(
                status=status,
                text=_HTML_PAGE.format(status=status, reason=reason),
                content_type="text/html",
            )
        if kind is FaultKind.EMPTY_502:
            return web.Response(status=502, body=b"")
        if kind is FaultKind.UNKNOWN_ERROR_KEY:
            answer = Answer.fail(
                fault.status or 400,
                9999,
                "SANDBOX_UNKNOWN_ERROR",
                "An error this SDK version has never seen",
            )
            return _json_response(answer, request_id)
        if kind is FaultKind.RATE_LIMITED:
            answer = Answer.fail(
                429, self._sb.behavior.rate_limited_code, "RATE_LIMITED", "Too many requests"
            )
            headers = None if fault.retry_after is None else _retry_after_header(fault.retry_after)
            return _json_response(answer, request_id, headers)
        answer = Answer.fail(503, 1007, "SYSTEM_MAINTENANCE", "The system is under maintenance")
        return _json_response(answer, request_id)

    async def _answer(
        self, request: web.Request, answer: Answer, request_id: str, faults: list[Fault]
    ) -> web.StreamResponse:
        sb = self._sb
        if _has(faults, FaultKind.RESET_AFTER):
            _drop_connection(request)
            raise _Dropped
        envelope = answer.envelope(request_id)
        if (
            _has(faults, FaultKind.MISSING_FIELDS)
            and answer.error is None
            and isinstance(answer.data, dict)
        ):
            first = next(iter(answer.data), None)
            envelope["data"] = {} if first is None else {first: answer.data[first]}
        body = json.dumps(envelope).encode()
        if _has(faults, FaultKind.MALFORMED_JSON):
            body = body[: len(body) // 2]
        for fault in faults:
            if fault.kind is FaultKind.SLOW_HEADERS:
                await sb.clock.sleep_until(sb.clock.now() + fault.delay)
        slow_body = next((f for f in faults if f.kind is FaultKind.SLOW_BODY), None)
        headers = {"X-Request-Id": request_id}
        if slow_body is None:
            return web.Response(
                status=answer.status, body=body, content_type="application/json", headers=headers
            )
        response = web.StreamResponse(status=answer.status, headers=headers)
        response.content_type = "application/json"
        response.content_length = len(body)
        try:
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            await sb.clock.sleep_until(sb.clock.now() + slow_body.delay)
            await response.write(body[len(body) // 2 :])
            await response.write_eof()
        except ConnectionResetError:
            # The client timed out and left: nothing left to send, and nothing went wrong.
            raise _Dropped from None
        return response


class _Recorder:
    """Appends the sandbox's record of one request (as on the wire: refs stay percent-encoded)."""

    def __init__(
        self,
        records: list[RequestRecord],
        request: web.Request,
        group: RouteGroup,
        sent_request_id: str | None,
    ) -> None:
        self._records = records
        self._request = request
        self._group = group
        self._sent_request_id = sent_request_id

    def __call__(
        self,
        status: int,
        key: str | None,
        *,
        merchant: str | None,
        counted: bool,
        at: float,
        faults: tuple[str, ...] = (),
    ) -> None:
        request = self._request
        self._records.append(
            RequestRecord(
                at,
                request.method,
                request.rel_url.raw_path,
                self._group,
                merchant,
                status,
                key,
                self._sent_request_id,
                counted,
                faults,
            )
        )


class _Dropped(web.HTTPException):
    """Raised when the connection is gone (reset on purpose, or the client left): nothing left to send."""

    status_code = 499
    empty_body = True


def _user_merchant(user: User) -> str:
    return user.merchant_id


def _merchant_id(merchant: Merchant) -> str:
    return merchant.id


def _has(faults: list[Fault], kind: FaultKind) -> bool:
    return any(f.kind is kind for f in faults)


def _key_of(response: web.Response | None) -> str | None:
    if response is None or response.content_type != "application/json" or response.body is None:
        return None
    body: Any = response.body
    try:
        return str(json.loads(body)["error"]["key"])
    except (ValueError, KeyError, TypeError):
        return None
