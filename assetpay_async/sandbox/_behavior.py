"""The points where AssetPay's behaviour is unconfirmed, gathered in one place so a test can pick each answer."""

from __future__ import annotations

import enum

import attrs

__all__ = ["RustCancelAnswer", "SandboxBehavior"]


class RustCancelAnswer(enum.StrEnum):
    """What a cancel of a Rust item answers."""

    NOT_CANCELLABLE = "TRADE_NOT_CANCELLABLE"
    """Code 28, as the contract's error table says (the default)."""
    UNSUPPORTED = "TRADE_CANCEL_UNSUPPORTED"
    """The key AssetPay's docs give for Rust and internal items; its code is unknown (the sandbox sends 29)."""


def _http_status(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 400 <= value <= 599:
        raise ValueError(f"{attribute.name} must be an HTTP error status, got {value!r}")


@attrs.frozen
class SandboxBehavior:
    """Choices for what no public source settles (the UNCONFIRMED points of AssetPay's API).

    Attributes:
        cancel_error_status: HTTP status of TRADE_CANCEL_TOO_SOON (27) and TRADE_NOT_CANCELLABLE (28).
        rust_cancel: the error a Rust item's cancel answers.
        retry_after: whether a 429 carries ``Retry-After`` (whole seconds, rounded up).
        validation_status: HTTP status of VALIDATION_FAILED (1001): 400 or 422.
        trade_by_id_route: whether ``GET /client/trades/{id}`` exists (absent from the OpenAPI document);
            when False it answers a bare 404 without an envelope, like an unknown route behind a proxy.
        rate_limited_code: the numeric code of RATE_LIMITED (1005 now, 1007 in older editions).
        secure_trades_include_clients: whether ``GET /secure/trades/{refs}`` resolves the merchant's
            clients' trades (True: the OpenAPI document and the official README) or only its own
            ``source: "self"`` trades (False: one documentation page). UNCONFIRMED.
        expired_token_key: what a token past its ``exp`` answers: ``TOKEN_EXPIRED`` (1111, the default)
            or ``INVALID_TOKEN`` (1102, what the official client renews on). 401 either way.
    """

    cancel_error_status: int = attrs.field(default=400, validator=_http_status)
    rust_cancel: RustCancelAnswer = attrs.field(
        default=RustCancelAnswer.NOT_CANCELLABLE, converter=RustCancelAnswer
    )
    retry_after: bool = True
    validation_status: int = attrs.field(default=400, validator=_http_status)
    trade_by_id_route: bool = True
    rate_limited_code: int = 1005
    secure_trades_include_clients: bool = True
    expired_token_key: str = attrs.field(
        default="TOKEN_EXPIRED",
        validator=attrs.validators.in_(("TOKEN_EXPIRED", "INVALID_TOKEN")),
    )
