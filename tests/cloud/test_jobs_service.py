"""The local IoT Jobs stand-in, driven as production drives IoT Jobs: the cloud through boto3
on moto (create_job, describe_job_execution, cancel_job, ...), the store through the SDK's
`IotJobsClientV2` (our `JobsClient`) or raw MQTT 5 over mutual TLS on the local broker."""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from awscrt import mqtt5

from cloud_sync import topics
from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.link.jobs import (
    REQUEST_TIMEOUT_S,
    JobExecution,
    JobRejected,
    JobsClient,
    JobsError,
)
from cloud_sync.link.mqtt import LinkClient
from cloud_sync.local.broker import JOBS_IDENTITY
from cloud_sync.local.jobs.documents import s3_location
from cloud_sync.local.jobs.rollout import RolloutPacer, abort_decision
from cloud_sync.local.stack import LAKE_BUCKET, LocalCloud
from tests.cloud.conftest import Inbox, unique_store, wait_until
from tests.cloud.stores import provision

# A job "minute" in the fast cloud: long enough to tell rollout steps apart on a loaded
# machine, short enough for the file to stay well under a minute.
FAST_MINUTE_S = 1.5
NOTIFY_TIMEOUT_S = 5.0
Connect = Callable[..., LinkClient]


@pytest.fixture(scope="module")
def fast_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """A second local cloud whose job minutes last FAST_MINUTE_S (rollouts, timeouts)."""
    with LocalCloud(tmp_path_factory.mktemp("fast-cloud"),
                    jobs_seconds_per_minute=FAST_MINUTE_S) as cloud:
        yield cloud


class Store:
    """A thing registered in moto, its broker credentials and (once connected) its jobs."""

    def __init__(self, cloud: LocalCloud, tmp_path: Path, prefix: str = "jobs") -> None:
        self.name = unique_store(prefix)
        self.cloud = cloud
        self.arn = cloud.boto3_client("iot").create_thing(thingName=self.name)["thingArn"]
        self.credentials: LinkCredentials = cloud.credentials(
            self.name, tmp_path / "clients" / self.name)
        self.next_executions: list[JobExecution | None] = []
        self.jobs: JobsClient | None = None

    def connect(self, connect: Connect, *, listen: bool = True,
                timeout_s: int = REQUEST_TIMEOUT_S) -> JobsClient:
        self.jobs = JobsClient(connect(self.credentials), timeout_s=timeout_s)
        if listen:
            self.jobs.on_next_execution(self.next_executions.append)
        return self.jobs

    def notified(self, predicate: Callable[[JobExecution | None], bool]) -> bool:
        return wait_until(lambda: any(predicate(e) for e in self.next_executions),
                          NOTIFY_TIMEOUT_S)

    def execution(self, job_id: str) -> dict[str, Any]:
        return self.cloud.boto3_client("iot").describe_job_execution(
            jobId=job_id, thingName=self.name)["execution"]


def new_job_id() -> str:
    return "job-" + uuid.uuid4().hex[:10]


def create_job(cloud: LocalCloud, stores: list[Store], document: dict[str, Any] | None = None,
               **options: Any) -> str:
    job_id = new_job_id()
    cloud.boto3_client("iot").create_job(
        jobId=job_id, targets=[s.arn for s in stores],
        document=json.dumps(document or {"operation": "noop"}), **options)
    return job_id


def presigned(url: str) -> str:
    return "${aws:iot:s3-presigned-url:" + url + "}"


def job_of(cloud: LocalCloud, job_id: str) -> dict[str, Any]:
    return cloud.boto3_client("iot").describe_job(jobId=job_id)["job"]


def test_a_job_from_boto3_runs_on_a_store_and_completes(local_cloud: LocalCloud,
                                                        connect: Connect,
                                                        tmp_path: Path) -> None:
    name = unique_store("jobs-e2e")
    credentials = LinkCredentials.load(provision(local_cloud, name, tmp_path / "creds"))
    iot, s3 = local_cloud.boto3_client("iot"), local_cloud.boto3_client("s3")
    s3.put_object(Bucket=LAKE_BUCKET, Key=f"bundles/{name}/model.tar.gz", Body=b"bundle v7")
    store_jobs = JobsClient(connect(credentials))
    nexts: list[JobExecution | None] = []
    store_jobs.on_next_execution(nexts.append)

    job_id = new_job_id()
    key = f"bundles/{name}/model.tar.gz"
    iot.create_job(jobId=job_id, targets=[iot.describe_thing(thingName=name)["thingArn"]],
                   document=json.dumps({
                       "version": "7",
                       # Virtual-hosted and path style: both presigned for moto's S3.
                       "bundle": presigned(f"https://{LAKE_BUCKET}.s3.amazonaws.com/{key}"),
                       "same": presigned(f"https://s3.eu-west-1.amazonaws.com/{LAKE_BUCKET}/"
                                         f"{key}")}),
                   presignedUrlConfig={"expiresInSec": 300})

    assert wait_until(lambda: any(e and e.job_id == job_id for e in nexts), NOTIFY_TIMEOUT_S)
    assert nexts[-1] is not None and nexts[-1].status == "QUEUED"
    execution = store_jobs.start_next({"step": "downloading"})
    assert execution is not None and execution.job_id == job_id
    assert (execution.status, execution.version_number) == ("IN_PROGRESS", 2)
    assert execution.document["version"] == "7"
    for field in ("bundle", "same"):
        url = execution.document[field]
        assert url.startswith(local_cloud.moto.endpoint_url) and "X-Amz-Signature" in url
        with urllib.request.urlopen(url, timeout=10) as download:
            assert download.read() == b"bundle v7"

    state = store_jobs.update(job_id, "SUCCEEDED", {"health": "ok"},
                              expected_version=execution.version_number)
    assert state.status == "SUCCEEDED" and state.version_number == 3

    described = iot.describe_job_execution(jobId=job_id, thingName=name)["execution"]
    assert described["status"] == "SUCCEEDED"
    assert described["statusDetails"]["detailsMap"] == {"step": "downloading", "health": "ok"}
    assert described["versionNumber"] == 3 and described["executionNumber"] == 1
    summaries = iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]
    assert [s["jobExecutionSummary"]["status"] for s in summaries] == ["SUCCEEDED"]
    job = job_of(local_cloud, job_id)
    assert job["status"] == "COMPLETED" and "completedAt" in job
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 1
    assert job["jobProcessDetails"]["numberOfQueuedThings"] == 0
    # Nothing pending any more: notify-next says so, with no execution.
    assert wait_until(lambda: nexts[-1] is None, NOTIFY_TIMEOUT_S)
    assert store_jobs.start_next() is None


def test_raw_requests_get_their_client_token_back_and_coded_rejections(
        local_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    store = Store(local_cloud, tmp_path)
    inbox = Inbox()
    client = connect(store.credentials, on_publish=inbox)
    prefix = topics.jobs_prefix(store.name)
    client.subscribe([prefix + "#"])
    job_id = create_job(local_cloud, [store], {"operation": "raw"})
    assert wait_until(lambda: prefix + "notify" in inbox.topics, NOTIFY_TIMEOUT_S)
    notify = json.loads(inbox.payloads[inbox.topics.index(prefix + "notify")])
    assert [j["jobId"] for j in notify["jobs"]["QUEUED"]] == [job_id]

    def ask(topic: str, payload: bytes) -> dict[str, Any]:
        count = len(inbox.packets)
        client.publish(prefix + topic, payload)
        assert wait_until(lambda: any(p.topic.startswith(prefix + topic + "/")
                                      for p in inbox.packets[count:]), NOTIFY_TIMEOUT_S)
        answer = next(p for p in inbox.packets[count:] if p.topic.startswith(prefix + topic + "/"))
        return {"topic": answer.topic.removeprefix(prefix), **json.loads(bytes(answer.payload))}

    pending = ask("get", b'{"clientToken": "token-get-1"}')
    assert pending["topic"] == "get/accepted" and pending["clientToken"] == "token-get-1"
    assert [j["jobId"] for j in pending["queuedJobs"]] == [job_id]
    assert pending["inProgressJobs"] == []
    assert isinstance(pending["timestamp"], int) and abs(pending["timestamp"] - time.time()) < 60
    assert pending["queuedJobs"][0]["versionNumber"] == 1

    described = ask(f"{job_id}/get", b'{"clientToken": "t-2", "includeJobDocument": false}')
    assert described["topic"] == f"{job_id}/get/accepted" and described["clientToken"] == "t-2"
    assert described["execution"]["status"] == "QUEUED"
    assert "jobDocument" not in described["execution"]
    assert ask("$next/get", b"{}")["execution"]["jobDocument"] == {"operation": "raw"}

    assert ask("get", b"{not json")["code"] == "InvalidJson"
    unknown = ask("no-such-job/update", b'{"status": "SUCCEEDED", "clientToken": "t-3"}')
    assert (unknown["topic"], unknown["code"], unknown["clientToken"]) == (
        "no-such-job/update/rejected", "ResourceNotFound", "t-3")
    invalid = ask(f"{job_id}/update", b'{"status": "DONE", "clientToken": "t-4"}')
    assert (invalid["code"], invalid["clientToken"]) == ("InvalidRequest", "t-4")
    details = ask(f"{job_id}/update", b'{"status": "IN_PROGRESS", "statusDetails": {"n": 1}}')
    assert details["code"] == "InvalidRequest"
    assert ask("start-next/extra", b"{}")["code"] == "InvalidTopic"
    assert store.execution(job_id)["status"] == "QUEUED"  # no rejected request changed it


def test_version_mismatch_and_invalid_transitions_are_rejected(
        local_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    store = Store(local_cloud, tmp_path)
    jobs = store.connect(connect, listen=False)
    job_id = create_job(local_cloud, [store])
    assert wait_until(lambda: jobs.pending() == ([], [job_id]), NOTIFY_TIMEOUT_S)
    execution = jobs.start_next()
    assert execution is not None

    with pytest.raises(JobRejected) as mismatch:
        jobs.update(job_id, "SUCCEEDED", expected_version=execution.version_number + 5)
    assert mismatch.value.code == "VersionMismatch"
    assert mismatch.value.state is not None and mismatch.value.state.status == "IN_PROGRESS"
    assert mismatch.value.state.version_number == execution.version_number

    state = jobs.update(job_id, "IN_PROGRESS", {"progress": "50"},
                        expected_version=execution.version_number)
    assert state.version_number == execution.version_number + 1
    jobs.update(job_id, "FAILED", {"reason": "checksum"})
    with pytest.raises(JobRejected) as transition:
        jobs.update(job_id, "IN_PROGRESS")
    assert transition.value.code == "InvalidStateTransition"
    assert transition.value.state is not None and transition.value.state.status == "FAILED"
    assert store.execution(job_id)["status"] == "FAILED"
    assert job_of(local_cloud, job_id)["jobProcessDetails"]["numberOfFailedThings"] == 1


def test_cancel_job_from_boto3_reaches_waiting_and_working_stores(
        local_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    waiting, working = Store(local_cloud, tmp_path), Store(local_cloud, tmp_path)
    for store in (waiting, working):
        store.connect(connect)
    iot = local_cloud.boto3_client("iot")
    job_id = create_job(local_cloud, [waiting, working])
    assert waiting.notified(lambda e: e is not None and e.job_id == job_id)
    assert working.notified(lambda e: e is not None and e.job_id == job_id)
    assert working.jobs is not None and working.jobs.start_next() is not None

    iot.cancel_job(jobId=job_id, reasonCode="BAD_BUNDLE", comment="wrong digest")
    assert waiting.notified(lambda e: e is None)  # notify-next: nothing pending any more
    assert waiting.execution(job_id)["status"] == "CANCELED"
    assert waiting.jobs is not None and waiting.jobs.start_next() is None
    # Without force, a store already working on it goes on, and may still report.
    assert working.execution(job_id)["status"] == "IN_PROGRESS"

    forced_id = create_job(local_cloud, [working])
    working.jobs.update(job_id, "SUCCEEDED")
    assert working.notified(lambda e: e is not None and e.job_id == forced_id)
    assert working.jobs.start_next() is not None
    iot.cancel_job(jobId=forced_id, force=True)
    assert wait_until(lambda: working.execution(forced_id)["status"] == "CANCELED",
                      NOTIFY_TIMEOUT_S)
    with pytest.raises(JobRejected) as late:
        working.jobs.update(forced_id, "SUCCEEDED")
    assert late.value.code == "TerminalStateReached"
    details = job_of(local_cloud, job_id)["jobProcessDetails"]
    assert (details["numberOfCanceledThings"], details["numberOfSucceededThings"]) == (1, 1)


def test_an_offline_store_gets_its_job_when_it_comes_back(
        local_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    store = Store(local_cloud, tmp_path)
    # This time the document is an S3 object (documentSource), itself with a placeholder.
    key = f"job-documents/{store.name}.json"
    local_cloud.boto3_client("s3").put_object(Bucket=LAKE_BUCKET, Key=key, Body=json.dumps({
        "operation": "while-away",
        "source": presigned(f"https://{LAKE_BUCKET}.s3.eu-west-1.amazonaws.com/{key}")}))
    job_id = new_job_id()
    local_cloud.boto3_client("iot").create_job(
        jobId=job_id, targets=[store.arn],
        documentSource=f"https://{LAKE_BUCKET}.s3.amazonaws.com/{key}")
    # The service has taken the job on (IN_PROGRESS), and nobody listened.
    assert wait_until(lambda: job_of(local_cloud, job_id)["status"] == "IN_PROGRESS",
                      NOTIFY_TIMEOUT_S)
    jobs = store.connect(connect, listen=False)
    assert jobs.pending() == ([], [job_id])
    described = jobs.describe()
    assert described is not None and described.document["operation"] == "while-away"
    with urllib.request.urlopen(described.document["source"], timeout=10) as download:
        assert json.loads(download.read())["operation"] == "while-away"
    execution = jobs.start_next()
    assert execution is not None and execution.job_id == job_id
    assert store.execution(job_id)["status"] == "IN_PROGRESS"


def test_a_store_cannot_see_or_drive_another_stores_jobs(
        local_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    victim, snoop = Store(local_cloud, tmp_path), Store(local_cloud, tmp_path)
    victim.connect(connect)
    inbox = Inbox()
    spy = connect(snoop.credentials, on_publish=inbox)
    spy.subscribe([topics.jobs_prefix(victim.name) + "#"])  # Mosquitto grants, then withholds
    job_id = create_job(local_cloud, [victim])
    assert victim.notified(lambda e: e is not None and e.job_id == job_id)

    puback = spy.publish(topics.jobs_prefix(victim.name) + "start-next", b"{}")
    assert puback is not None
    assert puback.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
    time.sleep(0.5)  # a leaked notification or response would have arrived by now
    assert inbox.topics == []
    assert victim.execution(job_id)["status"] == "QUEUED"


def test_abort_criteria_cancel_a_job_after_failures(local_cloud: LocalCloud, connect: Connect,
                                                    tmp_path: Path) -> None:
    stores = [Store(local_cloud, tmp_path) for _ in range(3)]
    for store in stores:
        store.connect(connect, listen=False)
    job_id = create_job(local_cloud, stores, abortConfig={"criteriaList": [{
        "failureType": "FAILED", "action": "CANCEL", "thresholdPercentage": 50.0,
        "minNumberOfExecutedThings": 2}]})
    first, second, last = (s.jobs for s in stores)
    assert first is not None and second is not None and last is not None
    assert wait_until(lambda: last.pending() == ([], [job_id]), NOTIFY_TIMEOUT_S)

    first.update(job_id, "FAILED", {"reason": "disk full"})
    assert job_of(local_cloud, job_id)["status"] == "IN_PROGRESS"  # 1 of 3: below 50 %
    second.update(job_id, "FAILED", {"reason": "disk full"})
    job = job_of(local_cloud, job_id)  # 2 of 3 failed: aborted at once
    assert job["status"] == "CANCELED" and job["reasonCode"]
    assert "2 of 3" in job["comment"]
    assert stores[2].execution(job_id)["status"] == "CANCELED"
    assert last.pending() == ([], [])
    assert job["jobProcessDetails"]["numberOfFailedThings"] == 2
    assert job["jobProcessDetails"]["numberOfCanceledThings"] == 1


def test_rollout_maximum_per_minute_holds_executions_back(
        fast_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    stores = [Store(fast_cloud, tmp_path, "rollout") for _ in range(3)]
    arrivals: dict[str, float] = {}
    lock = threading.Lock()
    for store in stores:
        jobs = store.connect(connect, listen=False)

        def arrived(execution: JobExecution | None, name: str = store.name) -> None:
            with lock:
                if execution is not None:
                    arrivals.setdefault(name, time.monotonic())

        jobs.on_next_execution(arrived)
    create_job(fast_cloud, stores, jobExecutionsRolloutConfig={"maximumPerMinute": 1})

    assert wait_until(lambda: len(arrivals) >= 1, NOTIFY_TIMEOUT_S)
    time.sleep(FAST_MINUTE_S / 3)
    assert len(arrivals) == 1  # one a minute: the others are held back
    assert wait_until(lambda: len(arrivals) == 3, 4 * FAST_MINUTE_S)
    times = sorted(arrivals.values())
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # A minute apart, give or take how late a notification reaches a loaded machine.
    assert all(gap > 0.5 * FAST_MINUTE_S for gap in gaps), gaps


def test_step_and_in_progress_timeouts(fast_cloud: LocalCloud, connect: Connect,
                                       tmp_path: Path) -> None:
    slow, stepped = Store(fast_cloud, tmp_path, "timeout"), Store(fast_cloud, tmp_path, "step")
    for store in (slow, stepped):
        store.connect(connect, listen=False)
    job_id = create_job(fast_cloud, [slow, stepped],
                        timeoutConfig={"inProgressTimeoutInMinutes": 2})
    assert slow.jobs is not None and stepped.jobs is not None
    assert wait_until(lambda: stepped.jobs.pending() == ([], [job_id]), NOTIFY_TIMEOUT_S)
    started = time.monotonic()
    assert slow.jobs.start_next() is not None
    assert stepped.jobs.start_next(step_timeout_minutes=1) is not None

    assert wait_until(lambda: stepped.execution(job_id)["status"] == "TIMED_OUT",
                      4 * FAST_MINUTE_S)
    assert time.monotonic() - started >= 0.8 * FAST_MINUTE_S
    assert slow.execution(job_id)["status"] == "IN_PROGRESS"  # its two minutes still run
    assert wait_until(lambda: slow.execution(job_id)["status"] == "TIMED_OUT",
                      4 * FAST_MINUTE_S)
    job = job_of(fast_cloud, job_id)
    assert job["jobProcessDetails"]["numberOfTimedOutThings"] == 2
    assert job["status"] == "COMPLETED"
    with pytest.raises(JobRejected) as late:
        slow.jobs.update(job_id, "SUCCEEDED")
    assert late.value.code == "TerminalStateReached"


def test_a_thing_group_target_runs_on_each_member(local_cloud: LocalCloud,
                                                  tmp_path: Path) -> None:
    iot = local_cloud.boto3_client("iot")
    members = [Store(local_cloud, tmp_path, "member") for _ in range(2)]
    group = unique_store("wave")
    group_arn = iot.create_thing_group(thingGroupName=group)["thingGroupArn"]
    for store in members:
        iot.add_thing_to_thing_group(thingGroupName=group, thingName=store.name)
    job_id = new_job_id()
    iot.create_job(jobId=job_id, targets=[group_arn], document="{}")
    assert wait_until(lambda: {s["thingArn"] for s in iot.list_job_executions_for_job(
        jobId=job_id)["executionSummaries"]} == {s.arn for s in members}, NOTIFY_TIMEOUT_S)


def test_rollout_and_abort_rules() -> None:
    pacer = RolloutPacer.from_config({"maximumPerMinute": 8, "exponentialRate": {
        "baseRatePerMinute": 2, "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 2}}}, seconds_per_minute=60)
    assert pacer.releasable(0.0, succeeded=0) == 2
    pacer.released(0.0)
    pacer.released(0.0)
    assert pacer.releasable(1.0, succeeded=0) == 2  # rate 4 now, 2 of them used this minute
    for _ in range(2):
        pacer.released(1.0)
    assert pacer.releasable(2.0, succeeded=0) == 4  # rate 8 (the maximum), 4 used
    assert pacer.releasable(61.5, succeeded=0) == 8
    assert RolloutPacer.from_config(None, 60).releasable(0.0, 0) is None

    criteria = [{"failureType": "REJECTED", "action": "CANCEL", "thresholdPercentage": 50,
                 "minNumberOfExecutedThings": 4}]
    assert abort_decision(criteria, 3, ["REJECTED"] * 3) is None  # too few notified
    assert abort_decision(criteria, 4, ["REJECTED", "FAILED", "FAILED", "QUEUED"]) is None
    decision = abort_decision(criteria, 4, ["REJECTED", "REJECTED", "QUEUED", "QUEUED"])
    assert decision is not None and decision.percentage == 50.0

    assert s3_location("https://b.s3.amazonaws.com/a/b%20c.tar") == ("b", "a/b c.tar")
    assert s3_location("https://s3.eu-west-1.amazonaws.com/b/k") == ("b", "k")
    with pytest.raises(ValueError):
        s3_location("https://example.com/b/k")


def test_the_jobs_identity_is_fenced_to_jobs_topics(fast_cloud: LocalCloud, connect: Connect,
                                                   tmp_path: Path) -> None:
    service = connect(fast_cloud.credentials(JOBS_IDENTITY, tmp_path / "jobs-identity"),
                      "jobs-fence-probe")
    denied = service.publish(topics.command_topic("store-x", "masterdata"), b"{}")
    allowed = service.publish(topics.jobs_prefix("store-x") + "notify", b"{}")
    assert denied is not None and denied.reason_code == mqtt5.PubackReasonCode.NOT_AUTHORIZED
    assert allowed is not None and int(allowed.reason_code) < 0x80


def test_the_service_answers_again_after_a_broker_restart(
        fast_cloud: LocalCloud, connect: Connect, tmp_path: Path) -> None:
    fast_cloud.broker.restart()
    store = Store(fast_cloud, tmp_path, "restart")
    jobs = store.connect(connect, listen=False, timeout_s=1)
    job_id = create_job(fast_cloud, [store])
    # The service reconnects on its own (paho's backoff) and subscribes again.
    assert wait_until(lambda: _pending_or_none(jobs) == ([], [job_id]), 15)


def _pending_or_none(jobs: JobsClient) -> tuple[list[str], list[str]] | None:
    try:
        return jobs.pending()
    except JobsError:
        return None  # asked before the service was back: no answer


def test_jobs_are_followed_after_a_moto_reset(fast_cloud: LocalCloud, connect: Connect,
                                              tmp_path: Path) -> None:
    reset = urllib.request.Request(f"{fast_cloud.moto.endpoint_url}/moto-api/reset",
                                   method="POST")
    urllib.request.urlopen(reset, timeout=10).close()  # moto builds new backends
    store = Store(fast_cloud, tmp_path, "after-reset")
    jobs = store.connect(connect, listen=False)
    job_id = create_job(fast_cloud, [store])
    assert wait_until(lambda: jobs.pending() == ([], [job_id]), NOTIFY_TIMEOUT_S)
