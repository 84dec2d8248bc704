"""Every Python block of README.md and docs/*.md runs as written, against the sandbox, on virtual time.

A page's blocks run in order in one namespace, as a reader reads them: a later fragment may use what an
earlier one defined. A fragment (``await client.cancel_withdrawal_item(trade_id, item_id)``) runs with the
names a reader is told to have already: ``client``, ``session``, ``token``, ``trade_id``/``item_id``,
``pairs``, ``trade_ref``, ``steam_id``/``trade_url`` (an end user), the merchant's ``API_SECRET`` (and
``ASSETPAY_API_KEY``/``ASSETPAY_API_SECRET`` in the environment), the public names of ``assetpay_async`` and of
``assetpay_async.callbacks``, and stand-ins for the application's own objects (``orders``, ``ledger``,
``refund``, ...). A session opened by a block without ``base_url`` talks to the sandbox (the default
``base_url`` points there during the test). A block that defines ``main`` and does not call it is called
with ``token`` and ``pairs``.

A block that cannot run here says so in its first line, visibly, with the reason:
``# Not run by the docs test: <why>.`` The reason is required.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as dt
import inspect
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import assetpay_async
import assetpay_async.callbacks as callbacks_module
from assetpay_async import AssetPaySession
from assetpay_async.sandbox import Sandbox
from assetpay_async.testing import run_virtual
from tests.support.callbacks import NOW as SIGNED_NOW
from tests.support.callbacks import SECRET, callback_body, signed_headers

ROOT = Path(__file__).parents[2]
BLOCK = re.compile(r"(?ms)^```python[^\n]*\n(.*?)^```")
SKIP = re.compile(r"\A# Not run by the docs test: (.{10,})\.\n")
# Written by the coordinator, not by the pages' owners; their blocks are checked where they are copied from.
NOT_PAGES = {"evidence.md", "benchmarks.md", "architecture.md", "changelog.md"}
PAGES = [
    "README.md",
    *sorted(p.name for p in (ROOT / "docs").glob("*.md") if p.name not in NOT_PAGES),
]


def blocks(page: str) -> list[tuple[int, str]]:
    path = ROOT / page if page == "README.md" else ROOT / "docs" / page
    text = path.read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 2, m[1]) for m in BLOCK.finditer(text)]


class _App:
    """Stand-in for an application object (``orders``, ``ledger``, ``risk``...): every method is an async
    function that records its call and answers True."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, method: str) -> Any:
        async def call(*args: Any, **kwargs: Any) -> bool:
            self.calls.append((method, args, kwargs))
            return True

        return call


async def _world(sb: Sandbox, session: AssetPaySession) -> dict[str, Any]:
    hour = dt.timedelta(hours=1)
    merchant = sb.add_merchant("verified")
    user = sb.add_user(merchant)
    token = sb.token(user)
    first = sb.add_trade(user, items=3, age=hour)
    batch = sb.add_trade(user, items=4, age=hour)
    whole = sb.add_trade(user, items=3, age=hour)
    queued = sb.add_trade(user, items=2, age=hour)
    listed = sb.add_trade(user, items=1, age=hour, item_ids=["0010f8d48278ccb8"])
    sb.add_trade(
        user, items=1, age=hour, external_id="order-1042", item_external_ids=["ext-item-1"]
    )
    body = callback_body()
    event = callbacks_module.verify_callback(body, signed_headers(body), [SECRET], now=SIGNED_NOW)

    async def refund(*args: Any) -> None:
        apps["refunds"].calls.append(("refund", args, {}))

    def report(outcomes: object) -> None:
        apps["reports"].calls.append(("report", (outcomes,), {}))

    async def user_token(request: object) -> str:
        return token

    apps = {
        name: _App(name) for name in ("orders", "risk", "ledger", "payouts", "deposits", "inbox")
    }
    apps |= {"refunds": _App("refunds"), "reports": _App("reports")}
    names: dict[str, Any] = {n: getattr(assetpay_async, n) for n in assetpay_async.__all__}
    names |= {n: getattr(callbacks_module, n) for n in callbacks_module.__all__}
    names |= apps
    names |= {
        "asyncio": asyncio,
        "os": os,
        "uuid": uuid,
        "dt": dt,
        "sandbox": sb,
        "session": session,
        "client": session.client(token),
        "token": token,
        "user": user,
        "trade_id": first.id,
        "item_id": first.items[0].id,
        "pairs": [(batch.id, item.id) for item in batch.items],
        "trade_ref": whole.id,
        "trade": listed,
        "merchant": merchant,
        "steam_id": user.steam_id,
        "trade_url": user.trade_url,
        "trade_ids": [first.id, batch.id],
        "API_SECRET": merchant.secret,
        "api_secret": merchant.secret,
        "secrets": [merchant.secret],
        "event": event,
        "refund": refund,
        "report": report,
        "show": print,
        "user_token": user_token,
        "batches_from_queue": lambda: [[(queued.id, item.id)] for item in queued.items],
        "__name__": "docs_block",
    }
    return names


def _defines_uncalled_main(tree: ast.Module) -> bool:
    defined = any(isinstance(n, ast.AsyncFunctionDef) and n.name == "main" for n in tree.body)
    called = any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "main"
        for n in ast.walk(tree)
    )
    return defined and not called


def _runs_its_own_loop(tree: ast.Module) -> bool:
    return any(
        isinstance(n, ast.Attribute) and n.attr == "run" and getattr(n.value, "id", "") == "asyncio"
        for n in ast.walk(tree)
    )


_SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)


def _expand_snippets(source: str) -> str:
    """pymdownx.snippets' includes, as the rendered page shows them."""
    return _SNIPPET.sub(lambda m: (ROOT / m[1]).read_text(encoding="utf-8"), source)


async def _run_block(source: str, names: dict[str, Any], where: str) -> None:
    tree = ast.parse(_expand_snippets(source), filename=where)
    if _runs_its_own_loop(tree):
        # A program that starts and stops its own event loops (asyncio.run): run it on a thread of its own.
        code = compile(tree, where, "exec")
        await asyncio.to_thread(exec, code, names)
        return
    code = compile(tree, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, names)  # noqa: S307 - the docs' own code
    if inspect.isawaitable(result):
        await result
    if _defines_uncalled_main(tree):
        await names["main"](names["token"], names["pairs"])


@contextlib.contextmanager
def _sandbox_default_url(url: str) -> Iterator[None]:
    """``AssetPaySession()`` without ``base_url`` talks to the sandbox (as a reader's would to AssetPay)."""
    defaults = AssetPaySession.__init__.__kwdefaults__
    assert defaults is not None
    before = defaults["base_url"]
    defaults["base_url"] = url
    try:
        yield
    finally:
        defaults["base_url"] = before


_MYSHOP = """\
from assetpay_async import AssetPayClient


async def cancel_and_refund(client: AssetPayClient, trade_id: str) -> None:
    trade = await client.get_trade(trade_id)
    pairs = [(trade_id, item.id) for item in trade.items]
    await client.cancel_withdrawal_items(pairs)
"""


def _run_test_block(source: str, where: str, tmp_path: Path) -> None:
    """A block that is a pytest test module: run by pytest, with a stand-in for the reader's own code."""
    (tmp_path / "myshop").mkdir()
    (tmp_path / "myshop" / "__init__.py").write_text("")
    (tmp_path / "myshop" / "refunds.py").write_text(_MYSHOP)
    (tmp_path / "test_block.py").write_text(source)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_block.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{where}\n{done.stdout}\n{done.stderr}"
    assert "1 passed" in done.stdout


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_of_the_page_runs(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = blocks(page)
    if not found:
        pytest.skip(f"{page} has no Python block")
    monkeypatch.chdir(tmp_path)  # a block may write a journal into the working directory
    # What a Redis block reads; nothing listens there, and no block here sends a request through it.
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    ran = []

    async def scenario() -> None:
        async with Sandbox(seed=5, start=dt.datetime.now(dt.UTC)) as sb:
            with _sandbox_default_url(sb.base_url):
                async with AssetPaySession(tier="verified", base_url=sb.base_url) as session:
                    names = await _world(sb, session)
                    # What merchant-mode blocks read: the sandbox merchant's API key and secret.
                    monkeypatch.setenv("ASSETPAY_API_KEY", names["merchant"].api_key)
                    monkeypatch.setenv("ASSETPAY_API_SECRET", names["merchant"].secret)
                    for line, source in found:
                        where = f"{page}:{line}"
                        if SKIP.match(source):
                            continue
                        if "@pytest.mark." in source:
                            await asyncio.to_thread(_run_test_block, source, where, tmp_path)
                        else:
                            await _run_block(source, names, where)
                        ran.append(where)

    run_virtual(scenario())
    capsys.readouterr()
    assert ran, f"every block of {page} is marked as not run"


def test_a_block_marked_not_run_says_why() -> None:
    for page in PAGES:
        for line, source in blocks(page):
            if source.startswith("# Not run"):
                assert SKIP.match(source), f"{page}:{line}: '# Not run by the docs test: <why>.'"
