"""The pure response decoder: every error of the contract and AssetPay's docs, invalid responses, request ids."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from multidict import CIMultiDict

from assetpay_async import (
    AccountDisabledError,
    APIError,
    APIValidationError,
    AuthenticationError,
    CancelTooSoonError,
    ForbiddenError,
    InvalidResponseError,
    ItemNotFoundError,
    NotCancellableError,
    RateLimitedError,
    ServerError,
    TradeNotFoundError,
)
from assetpay_async._protocol import Envelope, decode_envelope, parse_retry_after
from tests.support.core import error_body, success_body

SENT_ID = "sent-0000"
JSON = CIMultiDict({"Content-Type": "application/json"})

# (key, code, HTTP status, class) for every error of the contract and of AssetPay's published docs.
DOCUMENTED_ERRORS: list[tuple[str, int | None, int, type[APIError]]] = [
    ("TRADE_CANCEL_TOO_SOON", 27, 400, CancelTooSoonError),
    ("TRADE_NOT_CANCELLABLE", 28, 400, NotCancellableError),
    ("TRADE_CANCEL_UNSUPPORTED", None, 400, NotCancellableError),  # code unconfirmed
    ("TRADE_NOT_FOUND", 21, 404, TradeNotFoundError),
    ("FORBIDDEN", 1300, 403, ForbiddenError),
    ("ITEM_NOT_FOUND", 2201, 404, ItemNotFoundError),
    ("VALIDATION_FAILED", 1001, 400, APIValidationError),
    ("VALIDATION_FAILED", 1001, 422, APIValidationError),
    ("RATE_LIMITED", 1005, 429, RateLimitedError),
    ("SERVER_ERROR", 1006, 500, ServerError),
    ("SYSTEM_MAINTENANCE", 1007, 503, ServerError),
    ("SERVICE_UNAVAILABLE", 1009, 503, ServerError),
    ("UNAUTHORIZED", 1100, 401, AuthenticationError),
    ("INVALID_TOKEN", 1102, 401, AuthenticationError),
    ("MISSING_BEARER", 1108, 401, AuthenticationError),
    ("TOKEN_INVALID_OR_EXPIRED", 1110, 401, AuthenticationError),
    ("TOKEN_EXPIRED", 1111, 401, AuthenticationError),
    ("ACCOUNT_DISABLED", 1301, 403, AccountDisabledError),
]


def decode_error(status: int, body: bytes, headers: Any = JSON, **kwargs: Any) -> APIError:
    with pytest.raises(APIError) as info:
        decode_envelope(status, headers, body, SENT_ID, **kwargs)
    return info.value


def decode_invalid(status: int, body: bytes, headers: Any = JSON) -> InvalidResponseError:
    with pytest.raises(InvalidResponseError) as info:
        decode_envelope(status, headers, body, SENT_ID)
    return info.value


def test_success_envelope_gives_data_and_request_id() -> None:
    envelope = decode_envelope(200, JSON, success_body({"a": 1}, "req-9"), SENT_ID)
    assert envelope == Envelope({"a": 1}, "req-9")


@pytest.mark.parametrize(("key", "code", "status", "cls"), DOCUMENTED_ERRORS)
def test_key_path_maps_every_documented_error(
    key: str, code: int | None, status: int, cls: type[APIError]
) -> None:
    exc = decode_error(status, error_body(key, code, message="server words", request_id="req-1"))
    assert type(exc) is cls
    assert (exc.key, exc.code, exc.http_status) == (key, code, status)
    assert (exc.message, exc.request_id) == ("server words", "req-1")
    assert exc.ambiguous is (status >= 500)  # a 5xx may follow work the server did


@pytest.mark.parametrize(
    ("key", "code", "status", "cls"), [case for case in DOCUMENTED_ERRORS if case[1] is not None]
)
def test_code_path_maps_every_documented_code_when_the_key_is_missing(
    key: str, code: int, status: int, cls: type[APIError]
) -> None:
    exc = decode_error(status, error_body(None, code))
    assert type(exc) is cls
    assert (exc.key, exc.code) == (None, code)


def test_key_wins_over_a_renumbered_code() -> None:
    exc = decode_error(403, error_body("FORBIDDEN", 28))
    assert type(exc) is ForbiddenError


def test_empty_key_falls_back_to_the_code() -> None:
    exc = decode_error(400, error_body("", 28))
    assert type(exc) is NotCancellableError


@pytest.mark.parametrize(
    ("status", "cls"), [(429, RateLimitedError), (503, ServerError), (502, ServerError)]
)
def test_old_code_1007_is_rate_limited_on_429_else_maintenance(
    status: int, cls: type[APIError]
) -> None:
    # RATE_LIMITED was 1007 in an older edition; SYSTEM_MAINTENANCE is 1007 now.
    headers = CIMultiDict({"Content-Type": "application/json", "Retry-After": "12"})
    exc = decode_error(status, error_body(None, 1007), headers)
    assert type(exc) is cls
    if isinstance(exc, RateLimitedError):
        assert exc.retry_after == 12.0


def test_unknown_key_is_a_plain_api_error_that_keeps_everything() -> None:
    details = {"tradeId": "t-1", "hint": ["a", "b"]}
    body = error_body(
        "BRAND_NEW_ERROR", 28, message="new words", request_id="req-7", details=details
    )
    exc = decode_error(409, body)
    assert type(exc) is APIError
    assert exc.key == "BRAND_NEW_ERROR"
    assert exc.code == 28  # kept, but not trusted: codes get renumbered, keys do not
    assert exc.message == "new words"
    assert exc.details == details
    assert exc.request_id == "req-7"
    assert exc.http_status == 409
    assert "BRAND_NEW_ERROR" in str(exc)
    assert "req-7" in str(exc)


def test_unknown_code_without_key_is_a_plain_api_error() -> None:
    exc = decode_error(400, error_body(None, 424242))
    assert type(exc) is APIError
    assert exc.code == 424242


@pytest.mark.parametrize(("status", "cls"), [(429, RateLimitedError), (500, ServerError)])
def test_unknown_key_still_follows_the_http_status_for_429_and_5xx(
    status: int, cls: type[APIError]
) -> None:
    # A 429 must still pause the limiter and a 5xx must never be retried, whatever the key says.
    assert type(decode_error(status, error_body("SOMETHING_NEW", None))) is cls


def test_rate_limited_reads_retry_after_from_a_plain_lowercase_mapping() -> None:
    exc = decode_error(429, error_body("RATE_LIMITED", 1005), {"retry-after": "7"})
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after == 7.0


def test_rate_limited_without_retry_after_says_none() -> None:
    exc = decode_error(429, error_body("RATE_LIMITED", 1005))
    assert isinstance(exc, RateLimitedError)
    assert exc.retry_after is None


def test_message_list_is_joined() -> None:
    exc = decode_error(400, error_body("VALIDATION_FAILED", 1001, message=["one", "two", 3]))
    assert exc.message == "one; two; 3"


@pytest.mark.parametrize("message", [None, 12, {"x": 1}])
def test_missing_or_odd_message_does_not_break_decoding(message: Any) -> None:
    exc = decode_error(400, error_body("TRADE_NOT_CANCELLABLE", 28, message=message))
    assert type(exc) is NotCancellableError
    assert exc.message == "(no message)"


def test_validation_failed_keeps_fields() -> None:
    fields = {"tradeId": "must be a UUID", "items.0.id": 5}
    exc = decode_error(422, error_body("VALIDATION_FAILED", 1001, fields=fields))
    assert isinstance(exc, APIValidationError)
    assert exc.fields == {"tradeId": "must be a UUID", "items.0.id": "5"}


def test_validation_failed_without_fields_has_an_empty_mapping() -> None:
    exc = decode_error(400, error_body("VALIDATION_FAILED", 1001, fields="bad"))
    assert isinstance(exc, APIValidationError)
    assert exc.fields == {}


def test_ambiguous_flag_marks_not_cancellable_only() -> None:
    exc = decode_error(400, error_body("TRADE_NOT_CANCELLABLE", 28), ambiguous=True)
    assert exc.ambiguous is True
    assert "outcome unknown" in str(exc)
    other = decode_error(400, error_body("TRADE_CANCEL_TOO_SOON", 27), ambiguous=True)
    assert other.ambiguous is False


# -- request id precedence: envelope > header > the one we sent --------------------------------------


def _with_header(request_id: str) -> CIMultiDict[str]:
    return CIMultiDict({"Content-Type": "application/json", "X-Request-Id": request_id})


def test_request_id_from_the_envelope_first() -> None:
    exc = decode_error(
        404, error_body("ITEM_NOT_FOUND", 2201, request_id="env"), _with_header("hdr")
    )
    assert exc.request_id == "env"


def test_request_id_from_the_header_when_the_envelope_has_none() -> None:
    body = json.dumps({"success": False, "error": {"key": "FORBIDDEN", "code": 1300}}).encode()
    assert decode_error(403, body, _with_header("hdr")).request_id == "hdr"
    empty = error_body("FORBIDDEN", 1300, request_id="")
    assert decode_error(403, empty, {"x-request-id": "hdr"}).request_id == "hdr"


def test_request_id_falls_back_to_the_one_sent() -> None:
    body = json.dumps({"success": False, "error": {"key": "FORBIDDEN", "code": 1300}}).encode()
    assert decode_error(403, body).request_id == SENT_ID
    ok = json.dumps({"success": True, "data": {}}).encode()
    assert decode_envelope(200, JSON, ok, SENT_ID).request_id == SENT_ID


# -- invalid responses ---------------------------------------------------------------------------------

INVALID_RESPONSES: list[tuple[int, str | None, bytes, str]] = [
    (502, "text/html", b"<html><body>502 Bad Gateway</body></html>", "not JSON"),
    (200, "application/json", b"", "empty"),
    (200, "application/json", b"  \r\n ", "empty"),
    (500, None, b"", "empty"),
    (200, "application/json", b'{"success": true, "data": ', "not JSON"),
    (200, "application/json", b"\xff\xfe\x00garbage", "not JSON"),
    (200, "application/json", b"[1, 2, 3]", "not an AssetPay envelope"),
    (200, "application/json", b'"ok"', "not an AssetPay envelope"),
    (200, "application/json", b'{"data": {}}', "not an AssetPay envelope"),
    (200, "application/json", b'{"success": "true", "data": {}}', "not an AssetPay envelope"),
    (200, "application/json", b'{"success": true}', "without data"),
    (500, "application/json", b'{"success": true, "data": {}}', "success envelope on HTTP 500"),
    (400, "application/json", b'{"success": false}', "without an error object"),
    (400, "application/json", b'{"success": false, "error": "boom"}', "without an error object"),
    (200, "application/json", error_body("ITEM_NOT_FOUND", 2201, request_id=""), "on HTTP 200"),
    (200, "application/json", b"[" * 100_000, "not JSON"),  # would be a RecursionError
]


@pytest.mark.parametrize(("status", "content_type", "body", "reason"), INVALID_RESPONSES)
def test_invalid_responses_keep_status_content_type_and_snippet(
    status: int, content_type: str | None, body: bytes, reason: str
) -> None:
    headers = CIMultiDict({"Content-Type": content_type} if content_type else {})
    exc = decode_invalid(status, body, headers)
    assert reason in str(exc)
    assert exc.http_status == status
    assert exc.content_type == content_type
    assert exc.snippet == body[:200].decode("utf-8", "replace")[:200]
    assert exc.request_id == SENT_ID
    assert f"HTTP {status}" in str(exc)


def test_snippet_is_short_even_for_a_huge_body() -> None:
    exc = decode_invalid(
        502, b"<html>" + b"x" * 100_000, CIMultiDict({"Content-Type": "text/html"})
    )
    assert len(exc.snippet) == 200
    assert len(str(exc)) < 500


def test_invalid_response_prefers_the_envelope_request_id() -> None:
    body = json.dumps({"requestId": "env-id", "success": True}).encode()
    assert decode_invalid(200, body, _with_header("hdr")).request_id == "env-id"


def test_invalid_response_uses_the_header_request_id_before_the_sent_one() -> None:
    headers = CIMultiDict({"Content-Type": "text/html", "X-Request-Id": "hdr"})
    assert decode_invalid(502, b"<html></html>", headers).request_id == "hdr"


# -- Retry-After ---------------------------------------------------------------------------------------

NOW = dt.datetime(2026, 7, 31, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 3 ", 3.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("Fri, 31 Jul 2026 12:00:30 GMT", 30.0),
        ("Fri, 31 Jul 2026 12:00:30 -0000", 30.0),  # no zone: read as UTC
        ("Fri, 31 Jul 2026 11:00:00 GMT", 0.0),  # in the past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("0x10", None),
        ("Fri, 31 Dec 99999 23:59:59 GMT", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected
