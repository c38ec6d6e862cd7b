"""``release create``: verify a signed bundle, check it moves the fleet forward, upload it,
record the release and start its first wave."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud_sync.release import jobs
from cloud_sync.release.document import INSTALL, JobDocument, presigned_placeholder
from cloud_sync.release.record import (
    COMPLETE,
    ROLLING_OUT,
    ReleaseError,
    ReleaseRecord,
    ReleaseStore,
    bundle_key,
    check_version,
    timestamp,
)
from cloud_sync.release.spec import RolloutSpec
from cloud_sync.release.waves import fleet_stores, plan_waves
from models.bundle import verify_bundle
from models.bundle.keys import FleetPublicKey
from models.bundle.version import version_key

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


def previous_of(latest: ReleaseRecord | None) -> dict[str, Any] | None:
    """What the fleet serves once ``latest`` is settled: its bundle if it completed, else
    what it rolled back to."""
    if latest is None:
        return None
    if latest.status == COMPLETE:
        return {"version": latest.version, **{k: latest.bundle[k]
                                              for k in ("url", "sha256", "bytes")}}
    return latest.previous


def wave_document(record: ReleaseRecord) -> JobDocument:
    spec = record.spec
    return JobDocument(operation=INSTALL, release=record.release_id, version=record.version,
                       url=record.bundle["url"], sha256=record.bundle["sha256"],
                       bytes=record.bundle["bytes"], probation_s=spec.probation_s,
                       max_error_rate=spec.max_error_rate, max_p99_ms=spec.max_p99_ms)


def start_wave(iot: Any, record: ReleaseRecord, index: int, role_arn: str,
               now: datetime) -> str:
    """Create wave ``index``'s job (idempotent by its id) and note it in the record."""
    wave = record.waves[index]
    job = jobs.job_id(record.release_id, f"w{index}")
    jobs.create_job(iot, job, wave["things"], wave_document(record),
                    jobs.wave_job_config(record.spec, role_arn),
                    f"{record.name} {record.version}, wave {index} ({wave['label']})")
    wave["job_id"], wave["created_at"] = job, timestamp(now)
    record.current = index
    return job


def create_release(*, iot: Any, s3: Any, bucket: str, role_arn: str, bundle: Path,
                   public_key: FleetPublicKey | Path, spec: RolloutSpec,
                   clock: Clock = _utc_now) -> ReleaseRecord:
    """Everything ``cloud-sync release create`` does; raises :class:`ReleaseError` or a
    :class:`~models.bundle.BundleError` before anything is uploaded."""
    verified = verify_bundle(Path(bundle), public_key)  # a tampered bundle stops here
    version = check_version(verified.version)
    store = ReleaseStore(s3, bucket)
    latest = store.latest()
    if latest is not None:
        if version_key(version) <= version_key(latest.version):
            raise ReleaseError(f"bundle version {version} is not newer than the last release "
                               f"{latest.version}; build the bundle with a higher --version")
        if latest.status == ROLLING_OUT:
            raise ReleaseError(f"release {latest.version} is still rolling out: let it "
                               "complete, or abort it, first")
    data = Path(bundle).read_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    release_id = jobs.release_id_for(version, sha256)
    waves = plan_waves(release_id, fleet_stores(iot), spec.canaries, spec.waves)
    key = bundle_key(version)
    s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/gzip",
                  ChecksumAlgorithm="SHA256")
    now = clock()
    record = ReleaseRecord(
        release_id=release_id, name=verified.name, version=version,
        created_at=timestamp(now),
        bundle={"key": key, "url": presigned_placeholder(bucket, key), "sha256": sha256,
                "bytes": len(data)},
        previous=previous_of(latest), spec=spec,
        waves=[{"index": i, "label": label, "things": things, "job_id": None,
                "created_at": None} for i, (label, things) in enumerate(waves)])
    sizes = ", ".join(f"{label} {len(things)}" for label, things in waves)
    target = record.previous["version"] if record.previous else "none"
    record.log(now, "create", f"{sum(len(t) for _, t in waves)} stores in {len(waves)} "
               f"waves ({sizes}); rollback target {target}")
    store.save(record)  # before the job: a crash leaves a record the next step completes
    start_wave(iot, record, 0, role_arn, now)
    record.log(now, "start", f"wave 0 ({waves[0][0]}): {len(waves[0][1])} stores", wave=0)
    store.save(record)
    return record
