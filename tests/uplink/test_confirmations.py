"""The lake's confirmations: the watermark moves only over a run of confirmed batches, in
the outbox's order, whichever order the confirmations come in."""

from __future__ import annotations

from edge_agent.uplink.confirmations import LakeConfirmations


def test_the_watermark_waits_for_every_earlier_batch() -> None:
    lake = LakeConfirmations(watermark=0)
    for first, last in ((1, 10), (11, 20), (21, 30)):
        lake.sent(first, last, last - first + 1, now=0.0)
    assert lake.confirmed(11, 20) == 0  # the first batch is still unconfirmed
    assert lake.unconfirmed_events() == 20
    assert lake.confirmed(1, 10) == 20
    assert lake.oldest_unconfirmed_at() == 0.0
    assert lake.confirmed(21, 30) == 30
    assert lake.unconfirmed_events() == 0 and lake.oldest_unconfirmed_at() is None


def test_a_confirmation_faster_than_the_puback_counts_and_old_ones_are_ignored() -> None:
    lake = LakeConfirmations(watermark=100)
    assert lake.confirmed(101, 150) == 100  # the lake answered before our PUBACK callback
    lake.sent(101, 150, 50, now=1.0)
    assert lake.watermark == 150
    assert lake.confirmed(1, 50) == 150  # a duplicate of an old batch changes nothing
    lake.sent(151, 160, 10, now=2.0)
    lake.reset(150)  # a rewind: what follows is sent again
    assert lake.unconfirmed_events() == 0 and lake.watermark == 150
