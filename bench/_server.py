"""A server for ``bench.overhead`` in its own process: ``python -m bench._server sandbox|static``.

Prints one JSON line (``base_url``, ``token``, ``trade_id``, ``item_id``) once it listens, serves until its
standard input ends, then stops.
"""

from __future__ import annotations

import asyncio
import json
import sys

from .overhead import in_process


async def serve(kind: str) -> None:
    async with in_process(kind) as (base_url, token, trade_id, item_id):
        found = {"base_url": base_url, "token": token, "trade_id": trade_id, "item_id": item_id}
        print(json.dumps(found), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the benchmark closes our input


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in ("sandbox", "static"):
        raise SystemExit("usage: python -m bench._server sandbox|static")
    asyncio.run(serve(sys.argv[1]))
