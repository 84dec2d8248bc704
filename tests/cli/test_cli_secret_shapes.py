"""What the command line treats as a possible secret (never echoed, never a file name), and what it does not."""

from __future__ import annotations

import pytest

from assetpay_async.cli._secrets import looks_secret, redact, secrets_in

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJtZXJjaGFudElkIjoibS0xIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"


@pytest.mark.parametrize(
    "value",
    [
        JWT,
        f"./{JWT}",
        f"http://127.0.0.1:8080/?t={JWT}",
        "ap_live_4f9c2b7e1d8a",
        "Xk29fLq8Zr7Tn3Vb1Mw5Yc0Pd4Hs6Gj2Ka9Ue8Ri7",
    ],
)
def test_credentials_and_misplaced_tokens_look_secret(value: str) -> None:
    assert looks_secret(value)


@pytest.mark.parametrize(
    "value",
    [
        "items.csv",
        "/var/lib/assetpay/cancels.journal",
        "Results2026December04BatchNumber12.jsonl",
        "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f",
        "https://api.assetpay.gg",
        "verified",
        "60/60",
        "order-1042",
    ],
)
def test_paths_ids_urls_and_words_do_not(value: str) -> None:
    assert not looks_secret(value)


def test_a_known_token_is_found_inside_a_value_in_any_case_but_a_short_one_is_ignored() -> None:
    assert looks_secret(f"results-{'opaque-token-1234'.upper()}.jsonl", ["opaque-token-1234"])
    assert not looks_secret("results.jsonl", ["res"])


def test_redact_replaces_the_token_its_prefix_and_its_signature_in_any_case() -> None:
    secrets = secrets_in(["cancel", "--tier", JWT.lower()], {"ASSETPAY_CLIENT_TOKEN": JWT})
    text = f"invalid choice: {JWT.lower()!r}; got {JWT[:40]}...; sig {JWT.rsplit('.', 1)[1]}"
    cleaned = redact(text, secrets)
    assert JWT.lower() not in cleaned.lower()
    assert JWT.rsplit(".", 1)[1].lower() not in cleaned.lower()
    assert cleaned.startswith("invalid choice: '***'")


def test_the_redis_url_is_always_a_secret_and_other_variables_only_when_they_look_like_one() -> (
    None
):
    environ = {
        "ASSETPAY_REDIS_URL": "redis://:hunter2@cache:6379/0",
        "ASSETPAY_TIER": "verified",
        "ASSETPAY_MERCHANT_ID": JWT,
    }
    found = secrets_in([], environ)
    assert "redis://:hunter2@cache:6379/0" in found
    assert JWT in found
    assert "verified" not in found
