"""When a scan of ``GET /client/trades`` must stop: pure bookkeeping of one scan of one game's listing.

A listing ends with a page that has no ``nextCursor`` (or an empty one, or the cursor just sent, as the
official SDK reads it) or no trades. A server that never ends it would make every scan read forever and
spend the merchant's whole read quota, so a scan remembers every cursor it followed and every trade it saw:

* a ``nextCursor`` this scan already followed (A -> B -> A) is a cycle;
* more than ``MAX_PAGES`` pages is past any real listing;
* ``MAX_STALE_PAGES`` pages in a row that show no trade the scan had not seen yet go nowhere (fresh cursors
  over the same trades). One such page can be real (trades created while scanning shift an offset-based
  listing by a page), several in a row cannot.

Each raises [`ListingDidNotTerminateError`][assetpay_async.ListingDidNotTerminateError].
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from ._errors import ListingDidNotTerminateError
from ._models import Trade, TradePage

__all__ = ["MAX_PAGES", "MAX_STALE_PAGES", "ListingScan"]

MAX_PAGES: Final = 20_000
"""Pages one scan of one game reads at most (two million trades at 100 a page)."""
MAX_STALE_PAGES: Final = 3
"""Pages in a row without a trade the scan had not seen that end it."""


class ListingScan:
    """One scan of one game's listing: feed it each page with the cursor it was asked with.

    Args:
        game: the game listed (for the error's message).
        route: the listing read (for the error's message).
        max_pages: the most pages the scan reads before it ends with the error (default ``MAX_PAGES``).
    """

    __slots__ = ("_cursors", "_game", "_max_pages", "_route", "_seen", "_stale", "pages")

    def __init__(
        self, game: str, *, route: str = "GET /client/trades", max_pages: int | None = None
    ) -> None:
        self._game = game
        self._route = route
        self._max_pages = MAX_PAGES if max_pages is None else max_pages
        self._cursors: set[str] = set()
        self._seen: set[str] = set()
        self._stale = 0
        self.pages = 0

    def next_cursor(self, sent: str | None, page: TradePage) -> str | None:
        """The cursor to ask for next, or None when the listing ended with ``page``.

        Raises:
            ListingDidNotTerminateError: the listing does not end (see the module's docstring).
        """
        self.pages += 1
        fresh = {trade.id for trade in page.items} - self._seen
        self._seen.update(fresh)
        following = page.next_cursor
        if not following or not page.items or following == sent:
            return None
        self._stale = 0 if fresh else self._stale + 1
        if sent is not None:
            self._cursors.add(sent)
        if following in self._cursors:
            raise self._error(f"its nextCursor {following!r} came back", cursor=following)
        if self._stale >= MAX_STALE_PAGES:
            raise self._error(f"{self._stale} pages in a row showed only trades already listed")
        if self.pages >= self._max_pages:
            raise self._error(f"it gave more than {self._max_pages} pages")
        return following

    def _error(self, why: str, *, cursor: str | None = None) -> ListingDidNotTerminateError:
        return ListingDidNotTerminateError(
            f"{self._route} (game {self._game}) did not terminate: {why} after {self.pages} "
            "pages; the scan stopped instead of reading forever",
            game=self._game,
            pages=self.pages,
            cursor=cursor,
        )


async def walk(
    scan: ListingScan, page_at: Callable[[str | None], Awaitable[TradePage | None]]
) -> AsyncIterator[Trade]:
    """Every trade of a listing, page by page: ``page_at(cursor)`` reads a page (None: stop before reading
    it), and ``scan`` decides whether the listing goes on (it raises when it does not end)."""
    cursor: str | None = None
    while (page := await page_at(cursor)) is not None:
        for trade in page.items:
            yield trade
        cursor = scan.next_cursor(cursor, page)
        if cursor is None:
            return
