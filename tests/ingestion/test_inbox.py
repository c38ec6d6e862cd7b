"""The inbox wakes the pump once per batch: when it is full, when its oldest message has
waited the window, for an urgent message, or to stop."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge_agent.ingestion.inbox import Inbox

# Long enough that a wait ending by the window instead of its trigger is unmistakable.
LONG_WINDOW_S = 30.0
# Generous bound for "promptly" on a loaded CI machine, still far below LONG_WINDOW_S.
PROMPT_S = 5.0


def _timed(action: Callable[[], None]) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], None]], None]]:
    """Run an action on another thread after a delay (the network thread's role)."""
    threads: list[threading.Thread] = []

    def schedule(delay_s: float, action: Callable[[], None]) -> None:
        thread = threading.Thread(target=lambda: (time.sleep(delay_s), action()))
        thread.start()
        threads.append(thread)

    yield schedule
    for thread in threads:
        thread.join(PROMPT_S)


def test_take_is_fifo_and_bounded_by_the_limit() -> None:
    inbox: Inbox[int] = Inbox(capacity=10)
    for n in range(5):
        inbox.put(n)
    assert inbox.take(3) == [0, 1, 2]
    assert len(inbox) == 2
    assert inbox.take(10) == [3, 4]
    assert inbox.take(10) == []


def test_a_full_batch_ends_the_wait_before_the_window(later: Callable) -> None:
    inbox: Inbox[int] = Inbox(capacity=100)
    later(0.05, lambda: [inbox.put(n) for n in range(10)])
    assert _timed(lambda: inbox.wait_for_batch(10, LONG_WINDOW_S)) < PROMPT_S
    assert inbox.take(10) == list(range(10))


def test_a_partial_batch_waits_out_the_window() -> None:
    inbox: Inbox[int] = Inbox(capacity=100)
    inbox.put(1)
    assert _timed(lambda: inbox.wait_for_batch(10, 0.2)) >= 0.2


def test_the_window_counts_from_the_oldest_message() -> None:
    inbox: Inbox[int] = Inbox(capacity=100)
    inbox.put(1)
    time.sleep(0.3)  # e.g. it arrived while the writer was committing the previous batch
    assert _timed(lambda: inbox.wait_for_batch(10, 0.3)) < 0.2


def test_an_urgent_message_ends_the_wait(later: Callable) -> None:
    inbox: Inbox[str] = Inbox(capacity=100)
    inbox.put("sensor")
    later(0.05, lambda: inbox.put("http feedback", urgent=True))
    assert _timed(lambda: inbox.wait_for_batch(10, LONG_WINDOW_S)) < PROMPT_S
    assert inbox.take(10) == ["sensor", "http feedback"]
    inbox.put("next")  # urgency ends with the batch that took the urgent message
    assert _timed(lambda: inbox.wait_for_batch(10, 0.2)) >= 0.2


def test_interrupt_wakes_a_wait_on_an_empty_inbox(later: Callable) -> None:
    inbox: Inbox[int] = Inbox(capacity=100)
    later(0.05, inbox.interrupt)
    assert _timed(lambda: inbox.wait_for_batch(10, LONG_WINDOW_S)) < PROMPT_S
    inbox.put(1)
    assert _timed(lambda: inbox.wait_for_batch(10, LONG_WINDOW_S)) < PROMPT_S  # stays so
    inbox.resume()
    assert _timed(lambda: inbox.wait_for_batch(10, 0.2)) >= 0.2


def test_a_full_inbox_blocks_the_producer_until_the_pump_takes(later: Callable) -> None:
    inbox: Inbox[int] = Inbox(capacity=2)
    inbox.put(1)
    inbox.put(2)
    with pytest.raises(queue.Full):
        inbox.put(3, timeout=0.05)
    later(0.1, lambda: inbox.take(1))
    inbox.put(3, timeout=PROMPT_S)
    assert inbox.take(10) == [2, 3]
