"""``assetpay sandbox --callback-url`` (and a seed's callback_url): the examples receive callbacks as documented.

Real processes on the wall clock: the sandbox command, ``examples/refund_recipe.py`` and ``examples/web_service.py``,
run as their docstrings say. A short revert delay keeps each under a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from assetpay_async.cli._sandbox_cmd import with_callback_url
from tests.cli.test_cli_processes import CLI
from tests.support.examples import EXAMPLES, free_port


@contextmanager
def _sandbox(seed: Path, callback_url: str) -> Iterator[dict[str, Any]]:
    argv = [*CLI, "sandbox", "--port", "0", "--json", "--seed", str(seed), "--revert-delay", "0.3"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*argv, "--callback-url", callback_url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        try:
            yield json.loads(proc.stdout.readline())
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)


def _env(world: dict[str, Any], merchant: dict[str, Any]) -> dict[str, str]:
    return os.environ | {
        "ASSETPAY_BASE_URL": world["url"],
        "ASSETPAY_CLIENT_TOKEN": merchant["users"][0]["token"],
        "ASSETPAY_API_SECRET": merchant["secret"],
        "ASSETPAY_TIER": "verified",
    }


def test_the_examples_receive_callbacks_from_the_sandbox_command(tmp_path: Path) -> None:
    recipe_port, service_port = free_port(), free_port()
    seed = tmp_path / "world.json"
    trades = [{"game": "cs2", "items": 2, "age_minutes": 45}]
    seed.write_text(
        json.dumps(
            {
                "merchants": [
                    {  # its own URL: the recipe's
                        "id": "m-recipe",
                        "callback_url": f"http://127.0.0.1:{recipe_port}/assetpay/callback",
                        "users": [{"trades": trades}],
                    },
                    {"id": "m-service", "users": [{"trades": trades}]},  # --callback-url's
                ]
            }
        )
    )
    service_url = f"http://127.0.0.1:{service_port}/assetpay/callback"
    with _sandbox(seed, service_url) as world:
        recipe, service = world["merchants"]
        assert recipe["callback_url"].endswith(f":{recipe_port}/assetpay/callback")
        assert service["callback_url"] == service_url

        trade = recipe["users"][0]["trades"][0]
        refund = subprocess.run(  # noqa: S603 - our own interpreter and an example script
            [sys.executable, str(EXAMPLES / "refund_recipe.py"), "--port", str(recipe_port)]
            + ["--db", str(tmp_path / "refunds.sqlite3"), trade["id"]]
            + [item["id"] for item in trade["items"]],
            check=False,
            env=_env(world, recipe),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refund.returncode == 0, refund.stderr
        assert refund.stdout.endswith("refunded 2 of 2 item(s); 0 not cancelled, 0 still waiting\n")

        trade = service["users"][0]["trades"][0]
        item = trade["items"][0]["id"]
        with subprocess.Popen(  # noqa: S603 - our own interpreter and an example script
            [sys.executable, str(EXAMPLES / "web_service.py"), "--port", str(service_port)],
            env=_env(world, service),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as web:
            assert web.stderr is not None
            try:
                answer = _post_when_up(
                    f"http://127.0.0.1:{service_port}/withdrawals/{trade['id']}/items/{item}/cancel"
                )
                assert answer["status"] == "cancelled"
                deadline = time.monotonic() + 20
                while f"refunded item {item} of trade {trade['id']}" not in web.stderr.readline():
                    assert time.monotonic() < deadline, "no refund logged"
            finally:
                web.send_signal(signal.SIGINT)
                web.communicate(timeout=20)


def _post_when_up(url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        try:
            request = urllib.request.Request(url, method="POST")  # noqa: S310 - loopback http
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                body: dict[str, Any] = json.loads(response.read())
                return body
        except ConnectionError:
            assert time.monotonic() < deadline, "the web service never listened"
            time.sleep(0.05)
        except OSError as exc:
            if "Connection refused" not in str(exc):
                raise
            assert time.monotonic() < deadline, "the web service never listened"
            time.sleep(0.05)


def test_a_seed_level_callback_url_is_the_default_and_the_option_wins() -> None:
    seed = {
        "callback_url": "http://seed/cb",
        "merchants": [{"id": "a"}, {"id": "b", "callback_url": "http://own/cb"}],
    }
    assert [m["callback_url"] for m in with_callback_url(seed, None)["merchants"]] == [
        "http://seed/cb",
        "http://own/cb",
    ]
    assert [m["callback_url"] for m in with_callback_url(seed, "http://opt/cb")["merchants"]] == [
        "http://opt/cb",
        "http://own/cb",
    ]
    assert with_callback_url({"merchants": [{"id": "a"}]}, None) == {"merchants": [{"id": "a"}]}
