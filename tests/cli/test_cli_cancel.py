"""``assetpay cancel`` in-process against the sandbox on virtual time: result lines, JSON, exit codes, no token."""

from __future__ import annotations

import json

import pytest

from assetpay_async.cli import ExitCode
from tests.support.cli import FAST_QUOTA, World, on_world


def test_an_accepted_cancel_prints_one_line_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        run = await world.run(["cancel", *FAST_QUOTA, trade, item], capsys)
        assert run.code == ExitCode.OK
        assert run.out.startswith(f"cancelled: item {item} of trade {trade}")
        assert run.out.count("\n") == 1
        assert run.err == ""
        assert [r.path for r in world.cancels()] == [
            f"/client/trading/withdraw/{trade}/items/{item}/cancel"
        ]

    on_world(test)


def test_json_output_of_a_success(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[1].id
        run = await world.run(["cancel", "--tier", "verified", "--json", trade, item], capsys)
        body = json.loads(run.out)
        assert run.code == ExitCode.OK
        assert body["ok"] is True
        assert body["result"]["status"] == "cancelled"
        assert (body["result"]["trade_id"], body["result"]["item_id"]) == (trade, item)
        assert body["result"]["request_id"] == world.cancels()[0].request_id

    on_world(test)


@pytest.mark.parametrize(
    ("which", "key", "cls"),
    [
        ("young", "TRADE_CANCEL_TOO_SOON", "CancelTooSoonError"),
        ("rust", "TRADE_NOT_CANCELLABLE", "NotCancellableError"),
        ("foreign", "FORBIDDEN", "ForbiddenError"),
    ],
)
def test_a_refusal_prints_the_typed_error_and_exits_1(
    capsys: pytest.CaptureFixture[str], which: str, key: str, cls: str
) -> None:
    async def test(world: World) -> None:
        trade = getattr(world, which)
        argv = ["cancel", *FAST_QUOTA, trade.id, trade.items[0].id]
        run = await world.run(argv, capsys)
        assert run.code == ExitCode.FAILED
        assert run.out == ""
        assert run.err.startswith(f"failed: {cls} {key} (")
        assert f"[request id {world.cancels()[0].request_id}]" in run.err
        run = await world.run([*argv, "--json"], capsys)
        error = json.loads(run.out)["error"]
        assert run.code == ExitCode.FAILED
        assert (error["type"], error["key"], error["ambiguous"]) == (cls, key, False)

    on_world(test)


def test_wait_follows_the_item_to_reverted(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[2].id
        argv = ["cancel", *FAST_QUOTA, "--json", "--wait", trade, item]
        run = await world.run(argv, capsys)
        body = json.loads(run.out)
        assert run.code == ExitCode.OK
        assert body["final_status"] == "reverted"
        assert world.eligible.items[2].status == "reverted"

    on_world(test)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["cancel", "--tier", "verified", "..", "x"], {}, "trade_id cannot be '..'"),
        (["cancel", "--tier", "verified", "T" * 129, "ITEM"], {}, "error: argument TRADE_ID"),
        (["cancel", "--quota", "sixty", "a", "b"], {}, "expected LIMIT/SECONDS"),
        (["cancel", "--tier", "gold", "a", "b"], {}, "expected verified or unverified"),
        (["cancel", "--latency-margin", "-1", "a", "b"], {}, "finite number >= 0"),
        (
            ["cancel", "--token=x", "6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f"],
            {},
            "the following arguments are required: ITEM_ID",
        ),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    capsys: pytest.CaptureFixture[str], argv: list[str], env: dict[str, str], message: str
) -> None:
    async def test(world: World) -> None:
        run = await world.run(argv, capsys, **env)
        assert run.code == ExitCode.USAGE
        assert message in run.err
        assert world.cancels() == []

    on_world(test)


def test_usage_errors_never_echo_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        uid = world.eligible.id
        for argv in (
            ["cancel", f"--tokn={world.token}", uid, uid],  # an unknown option, quoted back
            ["cancel", "--tokn", world.token, uid],  # the token taken as TRADE_ID, shortened
            ["cancel", "--token", world.token, uid, uid, "extra"],
            ["cancel-batch", f"--token={world.token}"],
        ):
            # world.run asserts that neither the token nor its signature shows up
            run = await world.run(argv, capsys, ASSETPAY_CLIENT_TOKEN="")
            assert run.code == ExitCode.USAGE
            assert world.token[:40] not in run.err
            assert "error:" in run.err
        assert world.cancels() == []

    on_world(test)


def test_settings_errors_exit_2_and_send_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[0].id
        no_tier = await world.run(["cancel", trade, item], capsys)
        assert no_tier.code == ExitCode.USAGE
        assert "pass --tier verified|unverified" in no_tier.err
        bad_tier = await world.run(["cancel", trade, item], capsys, ASSETPAY_TIER="gold")
        assert bad_tier.code == ExitCode.USAGE
        assert "ASSETPAY_TIER must be 'verified' or 'unverified'" in bad_tier.err
        no_token = await world.run(
            ["cancel", "--tier", "verified", trade, item], capsys, ASSETPAY_CLIENT_TOKEN=""
        )
        assert no_token.code == ExitCode.USAGE
        assert "no client token: set ASSETPAY_CLIENT_TOKEN" in no_token.err
        opaque = await world.run(
            ["cancel", "--tier", "verified", "--token", "opaque-token-1234", trade, item], capsys
        )
        assert opaque.code == ExitCode.USAGE
        # The command line's own flag, not the Python API's keyword.
        assert "pass --merchant-id ID (or set $ASSETPAY_MERCHANT_ID)" in opaque.err
        assert "merchant_id=" not in opaque.err
        assert "opaque-token-1234" not in opaque.err
        assert world.cancels() == []

    on_world(test)


def test_the_token_option_wins_over_the_environment(capsys: pytest.CaptureFixture[str]) -> None:
    async def test(world: World) -> None:
        trade, item = world.eligible.id, world.eligible.items[3].id
        argv = ["cancel", *FAST_QUOTA, "--token", world.token, trade, item]
        run = await world.run(argv, capsys, ASSETPAY_CLIENT_TOKEN="garbage.token.value")
        assert run.code == ExitCode.OK
        assert [r.status for r in world.cancels()] == [200]

    on_world(test)


def test_an_expired_token_is_a_failure_that_never_shows_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def test(world: World) -> None:
        import datetime as dt

        expired = world.sandbox.token(world.user, lifetime=dt.timedelta(seconds=1))
        world.sandbox.advance(5)
        run = await world.run(
            ["cancel", *FAST_QUOTA, world.eligible.id, world.eligible.items[0].id],
            capsys,
            ASSETPAY_CLIENT_TOKEN=expired,
        )
        assert run.code == ExitCode.FAILED
        assert "AuthenticationError TOKEN_EXPIRED" in run.err
        assert expired not in run.out + run.err

    on_world(test)
