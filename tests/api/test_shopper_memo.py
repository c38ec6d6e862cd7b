"""The shopper memo keeps answers for their time to live, then lets them go."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from edge_agent.api.shopper_memo import ShopperMemo
from edge_agent.shoppers.profile import Profile


def _profile(customer_id: str) -> Profile:
    return Profile(customer_id, None, None, True, False, (), (), None, features_stamp="s1")


def _ask(memo: ShopperMemo, customer_id: str, calls: list[str]) -> list[str]:
    async def compute() -> list[str]:
        calls.append(customer_id)
        return [customer_id]
    return asyncio.run(memo.get_or_run("ranking", _profile(customer_id), "v1", compute))


def test_an_answer_is_reused_within_its_time_to_live() -> None:
    memo, calls = ShopperMemo(60.0, CollectorRegistry()), []
    assert _ask(memo, "C-1", calls) == ["C-1"] and _ask(memo, "C-1", calls) == ["C-1"]
    assert calls == ["C-1"]


def test_expired_answers_are_let_go_not_only_computed_again() -> None:
    """A busy morning's shoppers must not stay in a worker's memory all afternoon."""
    memo, calls = ShopperMemo(0.05, CollectorRegistry()), []
    for n in range(200):
        _ask(memo, f"C-{n}", calls)
    time.sleep(0.1)
    _ask(memo, "C-late", calls)
    assert len(memo) == 1
    _ask(memo, "C-0", calls)
    assert calls.count("C-0") == 2
