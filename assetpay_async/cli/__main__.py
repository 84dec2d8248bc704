"""``python -m assetpay_async.cli``: the ``assetpay`` command."""

from . import main

raise SystemExit(main())
