"""A lake worker on the IoT Core stand-in: a batch it cannot read is dead-lettered in the lake
with its reason and holds up nothing behind it; a good batch lands as Parquet and the store
gets its confirmation."""

from __future__ import annotations

import json
from collections.abc import Callable

from cloud_sync.lake.store import DEAD_LETTERS_PREFIX, Lake
from cloud_sync.lake.worker import LakeWorker
from cloud_sync.link.batch import encode_batch
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.mqtt import LinkClient
from cloud_sync.local.broker import CLOUD_IDENTITY
from cloud_sync.local.stack import LocalCloud
from cloud_sync.topics import command_topic, uplink_topic
from tests.cloud.conftest import Inbox, unique_store, wait_until


def test_an_unreadable_batch_is_dead_lettered_and_the_next_one_written(
        local_cloud: LocalCloud, lake: Lake, connect: Callable[..., LinkClient],
        store_credentials: Callable[[str], LinkCredentials]) -> None:
    store = unique_store()
    worker = LakeWorker(store_credentials(CLOUD_IDENTITY), lake, f"lake-{store}")
    worker.start()
    confirmations = Inbox()
    try:
        link = connect(store_credentials(store), on_publish=confirmations)
        link.subscribe([command_topic(store, "lake-ack")])
        topic = uplink_topic(store)
        good = encode_batch(store, "b-good", [{"event_id": "e-1", "type": "zone.traffic",
                                               "ts": "2026-11-21T09:30:00Z", "people": 3}],
                            (1, 1))
        for payload in (b"\x00not a batch", encode_batch("another-store", "b-x", [
                {"event_id": "e-x", "type": "zone.traffic", "ts": "2026-11-21T09:30:00Z"}]),
                good):
            assert int(link.publish(topic, payload).reason_code) < 0x80
        assert wait_until(lambda: lake.read(store_id=store).num_rows == 1, timeout=30)
        assert confirmations.wait_for(1, timeout=10)
        assert json.loads(confirmations.payloads[0]) == {
            "batch_id": "b-good", "first_seq": 1, "last_seq": 1}
    finally:
        worker.stop()
    assert worker.stats.dead_letters == 2
    s3 = local_cloud.boto3_client("s3")
    reasons = [json.loads(s3.get_object(Bucket=lake.bucket, Key=item["Key"])["Body"].read())
               ["reason"] for item in s3.list_objects_v2(
                   Bucket=lake.bucket, Prefix=DEAD_LETTERS_PREFIX).get("Contents", [])]
    assert any("not zlib-compressed" in r for r in reasons)
    assert any("batch of store 'another-store'" in r for r in reasons)
