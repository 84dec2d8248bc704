"""The ``--help`` epilogs of the ``assetpay`` commands: examples, and what each command prints and exits with."""

from __future__ import annotations

from typing import Final

from ._settings import ENV_TIER, ENV_TOKEN

__all__ = ["BATCH_EPILOG", "CANCEL_EPILOG", "DEMO_EPILOG", "MAIN_EPILOG", "SANDBOX_EPILOG"]

MAIN_EPILOG: Final = f"""\
examples:
  export {ENV_TOKEN}=...            # the end user's client token (never printed)
  assetpay cancel --tier verified TRADE_ID ITEM_ID
  assetpay cancel-batch --tier verified --results results.jsonl items.csv
  assetpay sandbox --port 8080      # a local AssetPay emulator with seeded users
  assetpay demo                     # the whole story in about 20 seconds

exit codes: 0 success, 1 some item failed or its outcome is unknown, 2 usage or input error
(nothing sent), 130 interrupted by Ctrl-C (after reporting what was done).
"""

CANCEL_EPILOG: Final = f"""\
examples:
  {ENV_TOKEN}=... assetpay cancel --tier verified \\
      6f1c0b9e-6a4e-4b59-9a1e-2f3f8c1d2e3f 0d9b3c4a-8e21-4f6b-a1b2-c3d4e5f60718
  assetpay cancel --tier verified --json --wait TRADE_ID ITEM_ID

A cancel the marketplace accepted prints 'cancelled' and exits 0; the item turns 'reverted' later
(--wait prints the accepted line at once, then polls until it does): refund the user then. Any
refusal prints its key, code and request id and exits 1. Ctrl-C says what is known: accepted,
outcome unknown (the request may have reached AssetPay), or not sent; it exits 130.
"""

BATCH_EPILOG: Final = f"""\
examples:
  assetpay cancel-batch --tier verified items.csv
  assetpay cancel-batch --tier verified --results - items.jsonl > results.jsonl
  cut -d, -f1,2 export.csv | assetpay cancel-batch --tier unverified -

The file is CSV (trade_id,item_id per line, optional header) or JSON Lines
({{"trade_id": "...", "item_id": "..."}} per line); '#' starts a comment line. Every line is
checked before anything is sent: a malformed line stops the command with its line number.
Ctrl-C stops cleanly and reports what was done, what may have been done and what never ran.
With --journal PATH a killed run (kill -9 too) resumes where it stopped: run the same command
again. A refused token, a disabled account, or --max-transport-failures pairs in a row with
nothing getting through stop the batch at once (exit 1). A duplicated pair is cancelled once.
Requests are paced to the merchant's quota ({ENV_TIER} or --tier), so a batch takes about one
minute per 58 items at 60/min.
"""

SANDBOX_EPILOG: Final = """\
examples:
  assetpay sandbox                          # http://127.0.0.1:8080, a seeded merchant and users
  assetpay sandbox --port 0 --json          # a free port; one JSON line with URL and tokens
  assetpay sandbox --seed world.json --algorithm gcra
  assetpay sandbox --callback-url http://127.0.0.1:8001/assetpay/callback   # examples/refund_recipe.py

Prints the sandbox's URL and a client token per seeded user (sandbox tokens: test secrets made
for printing), then serves until Ctrl-C. Point the SDK or 'assetpay cancel --base-url' at it.
The seed format is described in docs/sandbox.md.
"""

DEMO_EPILOG: Final = """\
examples:
  assetpay demo                    # about 20 s of paced cancels, callbacks verified, zero 429s
  assetpay demo --compare-naive    # then the same backlog through aiolimiter.AsyncLimiter(N, T)
  assetpay demo --fast             # on virtual time: instant, same schedule
  assetpay demo --fast --compare-naive --plot docs/img/demo-windows.svg   # the chart as an image

Everything runs in this process over loopback: an embedded sandbox seeded with a realistic
backlog, a real AssetPaySession, and a callback endpoint verifying the signed 'reverted' callbacks.
"""
