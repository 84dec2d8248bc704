"""Helpers of the CLI tests: a seeded sandbox world on virtual time, and running ``assetpay`` in-process."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import attrs
import pytest

from assetpay_async._quota import RouteGroup
from assetpay_async.cli import main_async
from assetpay_async.sandbox import Merchant, RequestRecord, Sandbox, SandboxTrade, User
from assetpay_async.testing import run_virtual

T = TypeVar("T")

FAST_QUOTA = ["--quota", "60/3", "--latency-margin", "0.05"]
"""A scaled quota matching the world's merchant: 60 cancels per 3 s."""


@attrs.frozen
class CliRun:
    """What one ``assetpay`` invocation returned and printed."""

    code: int
    out: str
    err: str


@attrs.define
class World:
    """A sandbox with one merchant (60 cancels per 3 s), its user, and trades of every kind."""

    sandbox: Sandbox
    merchant: Merchant
    user: User
    token: str
    eligible: SandboxTrade
    young: SandboxTrade
    rust: SandboxTrade
    foreign: SandboxTrade

    def env(self, **extra: str) -> dict[str, str]:
        """The environment a user would set: the token and the sandbox's URL."""
        return {
            "ASSETPAY_CLIENT_TOKEN": self.token,
            "ASSETPAY_BASE_URL": self.sandbox.base_url,
        } | extra

    def cancels(self) -> list[RequestRecord]:
        """Every cancel request the sandbox received."""
        return [r for r in self.sandbox.requests if r.group is RouteGroup.CANCEL_ITEM]

    def assert_no_secret(self, text: str) -> None:
        """Neither the token nor its signature segment appears in ``text``."""
        assert self.token not in text
        assert self.token.split(".")[2] not in text

    async def run(
        self, argv: Sequence[str], capsys: pytest.CaptureFixture[str], **env: str
    ) -> CliRun:
        """Run ``assetpay argv`` on this loop; the token must appear nowhere in what it printed."""
        code = await main_async(argv, environ=self.env(**env))
        captured = capsys.readouterr()
        self.assert_no_secret(captured.out + captured.err)
        return CliRun(code, captured.out, captured.err)


def build_world(sandbox: Sandbox) -> World:
    hour = dt.timedelta(hours=1)
    merchant = sandbox.add_merchant("verified", quotas={"cancel-item": (60, 3.0)})
    user = sandbox.add_user(merchant)
    other = sandbox.add_user(merchant)
    return World(
        sandbox=sandbox,
        merchant=merchant,
        user=user,
        token=sandbox.token(user),
        eligible=sandbox.add_trade(user, items=4, age=hour),
        young=sandbox.add_trade(user, items=2, age=dt.timedelta(minutes=5)),
        rust=sandbox.add_trade(user, game="rust", items=1, age=hour),
        foreign=sandbox.add_trade(other, items=1, age=hour),
    )


def on_world(test: Callable[[World], Awaitable[T]]) -> T:
    """Run ``test`` on virtual time with a started sandbox world; the sandbox is closed afterwards."""

    async def main() -> T:
        async with Sandbox(seed=1) as sandbox:
            return await test(build_world(sandbox))

    return run_virtual(main())
