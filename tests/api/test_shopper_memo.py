"""The shopper memo keeps answers for their time to live, then lets them go; the HTTP workers
of one run share it, and one worker's write never makes another's request wait."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from edge_agent.api import shopper_memo
from edge_agent.api.shared import SharedRuntime
from edge_agent.api.shopper_memo import ShopperMemo
from edge_agent.shoppers.profile import Profile


def _profile(customer_id: str, stamp: str = "s1") -> Profile:
    return Profile(customer_id, None, None, True, False, (), (), None, features_stamp=stamp)


def _ask(memo: ShopperMemo, customer_id: str, calls: list[str], stamp: str = "s1") -> list[str]:
    async def compute() -> list[str]:
        calls.append(customer_id)
        return [customer_id]
    return asyncio.run(memo.get_or_run("ranking", _profile(customer_id, stamp), "v1", compute))


def test_an_answer_is_reused_within_its_time_to_live() -> None:
    memo, calls = ShopperMemo(60.0, CollectorRegistry()), []
    assert _ask(memo, "C-1", calls) == ["C-1"] and _ask(memo, "C-1", calls) == ["C-1"]
    assert calls == ["C-1"]


def test_a_new_sale_of_the_shopper_is_a_new_answer() -> None:
    memo, calls = ShopperMemo(60.0, CollectorRegistry()), []
    _ask(memo, "C-1", calls, stamp="3@t1")
    _ask(memo, "C-1", calls, stamp="4@t2")
    assert calls == ["C-1", "C-1"]


def test_expired_answers_are_let_go_not_only_computed_again() -> None:
    """A busy morning's shoppers must not stay in the memo all afternoon."""
    memo, calls = ShopperMemo(0.05, CollectorRegistry()), []
    for n in range(200):
        _ask(memo, f"C-{n}", calls)
    time.sleep(0.1)
    _ask(memo, "C-late", calls)
    assert len(memo) == 1
    _ask(memo, "C-0", calls)
    assert calls.count("C-0") == 2


def test_the_memo_never_holds_more_than_its_cap(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setattr(shopper_memo, "MAX_ENTRIES", 50)
    monkeypatch.setattr(shopper_memo, "TRIM_EVERY_WRITES", 10)
    memo, calls = ShopperMemo(600.0, CollectorRegistry(), tmp_path / "memo.sqlite"), []
    for n in range(300):
        _ask(memo, f"C-{n}", calls)
    assert len(memo) <= 50 + 10
    _ask(memo, "C-299", calls)  # the newest stay
    assert calls.count("C-299") == 1
    _ask(memo, "C-0", calls)  # the oldest went
    assert calls.count("C-0") == 2


_OTHER_WORKER = """
import asyncio, sys
from pathlib import Path
from prometheus_client import CollectorRegistry
from edge_agent.api.shopper_memo import ShopperMemo
from edge_agent.shoppers.profile import Profile

async def compute():
    return [("MILK", 0.9), ("BREAD", 0.5)]

memo = ShopperMemo(60.0, CollectorRegistry(), Path(sys.argv[1]))
profile = Profile("C-1", None, None, True, False, (), (), None, features_stamp="s1")
asyncio.run(memo.get_or_run("ranking", profile, "v1", compute))
"""


def test_an_answer_one_worker_computed_is_reused_by_another(tmp_path: Path) -> None:
    """The kernel hands a shopper's next request to any worker: it must not compute again."""
    path = tmp_path / "memo.sqlite"
    subprocess.run([sys.executable, "-c", _OTHER_WORKER, str(path)], check=True, timeout=60)
    calls: list[str] = []

    async def compute() -> list[tuple[str, float]]:
        calls.append("C-1")
        return []
    memo = ShopperMemo(60.0, CollectorRegistry(), path)
    answer = asyncio.run(memo.get_or_run("ranking", _profile("C-1"), "v1", compute))
    assert answer == [("MILK", 0.9), ("BREAD", 0.5)] and calls == []


def test_a_worker_does_not_wait_while_another_writes(tmp_path: Path) -> None:
    """The answer is served at once and simply not kept (next time it is computed again)."""
    path = tmp_path / "memo.sqlite"
    registry = CollectorRegistry()
    memo, calls = ShopperMemo(60.0, registry, path), []
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another worker in the middle of its write
    try:
        started = time.monotonic()
        assert _ask(memo, "C-1", calls) == ["C-1"]
        waited = time.monotonic() - started
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert waited < 1.0  # the setup's timeout is 10 s: this would be it, had it waited
    assert registry.get_sample_value("edge_shopper_memo_skipped_writes_total") == 1
    _ask(memo, "C-1", calls)
    assert calls == ["C-1", "C-1"]
    _ask(memo, "C-1", calls)  # kept the second time
    assert calls == ["C-1", "C-1"]


def _open_together(memo_file: Path, workers: int = 2) -> list[ShopperMemo]:
    """The memo as `workers` workers starting at the same instant open it."""
    together, memos = threading.Barrier(workers), []

    def open_memo() -> None:
        together.wait()
        memos.append(ShopperMemo(60.0, CollectorRegistry(), memo_file))
    threads = [threading.Thread(target=open_memo) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(memos) == workers, "a worker could not open the memo"
    return memos


def test_workers_starting_together_all_open_the_runs_memo(tmp_path: Path) -> None:
    """Every worker of a run starts at once and opens the memo the agent prepared. Before the
    agent created the file itself, two workers racing to create it failed with "database
    is locked" in about 1 start in 25, and the worker died (CI saw it)."""
    for start in range(300):
        runtime = SharedRuntime(tmp_path / f"run-{start}")
        runtime.prepare()
        first, second = _open_together(runtime.memo_file)
        calls: list[str] = []
        _ask(first, "C-1", calls)
        _ask(second, "C-1", calls)  # shared: the other worker's answer
        assert calls == ["C-1"], f"start {start}: a worker kept a memo of its own"
        first.close()
        second.close()


def test_a_worker_whose_memo_file_cannot_open_still_serves(tmp_path: Path) -> None:
    """The memo is a cache: without it a worker answers, it does not die at start."""
    memo, calls = ShopperMemo(60.0, CollectorRegistry(), tmp_path / "gone" / "memo.sqlite"), []
    assert _ask(memo, "C-1", calls) == ["C-1"] and _ask(memo, "C-1", calls) == ["C-1"]
    assert calls == ["C-1"]
