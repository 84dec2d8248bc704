"""Request ids: a version 4 UUID per call, unique within a process and across processes (issue 23)."""

from __future__ import annotations

import subprocess
import sys
import uuid

from assetpay_async import _envelope
from assetpay_async._protocol import new_request_id


def test_request_ids_are_distinct_version_4_uuids() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    parsed = [uuid.UUID(one) for one in ids]
    assert {one.version for one in parsed} == {4}
    assert {one.variant for one in parsed} == {uuid.RFC_4122}
    assert all(
        str(one) == text for one, text in zip(parsed, ids, strict=True)
    )  # canonical lowercase


def test_reseeding_after_a_fork_gives_a_new_prefix_and_keeps_ids_unique() -> None:
    before = new_request_id()
    _envelope._IDS.reseed()  # what a forked child runs (os.register_at_fork)
    after = new_request_id()
    assert before[:24] != after[:24]
    assert uuid.UUID(after).version == 4


def test_two_processes_draw_different_prefixes() -> None:
    code = "from assetpay_async._protocol import new_request_id as n; print(n())"
    runs = [
        subprocess.run(  # noqa: S603 - this interpreter and a fixed snippet
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs[0] != new_request_id()
    assert runs[0][:24] != runs[1][:24]
