"""The demo's backlog: a sandbox world holding every kind of item a real cancel queue meets.

`seed_backlog` is deterministic for a given sandbox seed and ``seed``: the same ids, ages and order every run,
so the SDK run and the naive comparison (on a fresh sandbox) cancel the very same pairs.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import uuid
from typing import Final

import attrs

from assetpay_async._batch import OutcomeKind
from assetpay_async.sandbox import Merchant, Sandbox, User

__all__ = ["BACKLOG_MIX", "Backlog", "Category", "seed_backlog"]


class Category(enum.Enum):
    """What a backlog item is, and how its cancel must end (outcome kind, error key)."""

    ELIGIBLE = ("eligible CS2 item", OutcomeKind.CANCELLED, None)
    TOO_YOUNG = ("CS2 item younger than 30 min", OutcomeKind.FAILED, "TRADE_CANCEL_TOO_SOON")
    RUST = ("Rust item (no cancel API)", OutcomeKind.FAILED, "TRADE_NOT_CANCELLABLE")
    FOREIGN = ("another user's trade", OutcomeKind.FAILED, "FORBIDDEN")
    TERMINAL = ("already completed or reverted", OutcomeKind.FAILED, "TRADE_NOT_CANCELLABLE")
    MISSING = ("item id not in the trade", OutcomeKind.FAILED, "ITEM_NOT_FOUND")

    def __init__(self, label: str, kind: OutcomeKind, key: str | None) -> None:
        self.label = label
        self.kind = kind
        self.key = key


BACKLOG_MIX: Final = {
    Category.ELIGIBLE: 200,
    Category.TOO_YOUNG: 25,
    Category.RUST: 20,
    Category.FOREIGN: 20,
    Category.TERMINAL: 20,
    Category.MISSING: 15,
}
"""How many items of each kind the demo seeds (300 cancels)."""


@attrs.frozen
class Backlog:
    """The seeded world: whose token cancels, the pairs in cancel order, and the kind of each pair."""

    merchant: Merchant
    user: User
    pairs: tuple[tuple[str, str], ...]
    categories: tuple[Category, ...]

    def expected(self) -> dict[Category, int]:
        """Items per category."""
        return {c: self.categories.count(c) for c in Category if c in self.categories}


def _trade_sizes(rng: random.Random, items: int) -> list[int]:
    sizes = []
    while items > 0:
        size = min(items, rng.randint(1, 5))
        sizes.append(size)
        items -= size
    return sizes


def seed_backlog(
    sandbox: Sandbox,
    merchant: Merchant,
    *,
    mix: dict[Category, int] | None = None,
    seed: int = 7,
) -> Backlog:
    """Give ``merchant`` a user whose cancel queue holds ``mix`` items, shuffled; return the queue.

    Trades hold one to five items; eligible trades are 35 minutes to 4 hours old, young ones 2 to 25 minutes;
    foreign items belong to a second user of the same merchant; missing items are fresh ids under real trades.
    """
    rng = random.Random(f"{seed}:backlog")
    wanted = BACKLOG_MIX if mix is None else mix
    user = sandbox.add_user(merchant)
    other = sandbox.add_user(merchant)
    minutes = dt.timedelta(minutes=1)
    entries: list[tuple[str, str, Category]] = []

    def add(
        category: Category,
        owner: User,
        ages: tuple[float, float],
        game: str = "cs2",
        terminal: bool = False,
    ) -> None:
        for size in _trade_sizes(rng, wanted.get(category, 0)):
            status = rng.choice(("completed", "reverted")) if terminal else None
            made = sandbox.add_trade(
                owner,
                game=game,
                items=size,
                age=rng.uniform(*ages) * minutes,
                status=status,
                item_status=status or "active",
            )
            entries.extend((made.id, item.id, category) for item in made.items)

    add(Category.ELIGIBLE, user, (35, 240))
    add(Category.TOO_YOUNG, user, (2, 25))
    add(Category.RUST, user, (35, 240), game="rust")
    add(Category.FOREIGN, other, (35, 240))
    add(Category.TERMINAL, user, (35, 240), terminal=True)
    owned = [e[0] for e in entries if e[2] is Category.ELIGIBLE] or [
        sandbox.add_trade(user, age=60 * minutes).id
    ]
    entries.extend(
        (rng.choice(owned), str(uuid.UUID(int=rng.getrandbits(128), version=4)), Category.MISSING)
        for _ in range(wanted.get(Category.MISSING, 0))
    )
    rng.shuffle(entries)
    return Backlog(
        merchant=merchant,
        user=user,
        pairs=tuple((trade, item) for trade, item, _ in entries),
        categories=tuple(category for _, _, category in entries),
    )
