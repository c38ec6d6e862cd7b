"""``releases/<version>/release.json``: a release's spec and its state, in S3 beside its
bundle. It is the controller's only memory: every step reads it, acts, and writes it back,
so any controller process can take over, and an operator can read why each step happened.

Shape (JSON)::

    {"release_id", "name", "version", "created_at", "status",   # rolling-out | complete |
                                                                  # aborted | rolled-back
     "bundle": {"key", "url", "sha256", "bytes"},
     "previous": {"version", "url", "sha256", "bytes"} | null,   # where a rollback goes
     "spec": RolloutSpec.to_dict(),
     "waves": [{"index", "percent", "things", "job_id", "created_at"}],
     "current": <index of the wave in flight>,
     "decisions": [{"at", "wave", "action", "reason"}],
     "rollbacks": [{"job_id", "version", "things", "created_at", "reason"}]}
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cloud_sync.release.spec import RolloutSpec
from models.bundle.version import version_key

logger = logging.getLogger(__name__)

PREFIX = "releases/"
RECORD_FILE = "release.json"
BUNDLE_FILE = "bundle.tar.gz"
ROLLING_OUT, COMPLETE, ABORTED, ROLLED_BACK = "rolling-out", "complete", "aborted", "rolled-back"
# S3's answers to a conditional write that lost a race.
_CONFLICTS = ("PreconditionFailed", "ConditionalRequestConflict")
# A version becomes an S3 key part and part of job ids: keep it to a plain alphabet.
_SAFE_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


class ReleaseError(ValueError):
    """A release cannot be created or stepped; the message says why (exit code 2)."""


def check_version(version: str) -> str:
    if not _SAFE_VERSION.match(version):
        raise ReleaseError(f"bundle version {version!r} is not usable in S3 keys and job ids "
                           "(letters, digits and ._+- only, at most 64)")
    return version


def bundle_key(version: str) -> str:
    return f"{PREFIX}{check_version(version)}/{BUNDLE_FILE}"


def record_key(version: str) -> str:
    return f"{PREFIX}{check_version(version)}/{RECORD_FILE}"


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass
class ReleaseRecord:
    release_id: str
    name: str
    version: str
    created_at: str
    bundle: dict[str, Any]
    previous: dict[str, Any] | None
    spec: RolloutSpec
    waves: list[dict[str, Any]]
    status: str = ROLLING_OUT
    current: int = 0
    decisions: list[dict[str, Any]] = field(default_factory=list)
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    # The S3 ETag this record was read or written as (not part of the JSON): a save is
    # conditional on it, so two controllers cannot overwrite each other's decisions.
    etag: str | None = field(default=None, compare=False, repr=False)

    def log(self, now: datetime, action: str, reason: str, wave: int | None = None) -> None:
        """Record one decision with its reason, and log it."""
        self.decisions.append({"at": timestamp(now), "wave": self.current if wave is None
                               else wave, "action": action, "reason": reason})
        logger.info("release %s wave %s: %s (%s)", self.version, self.current, action, reason)

    def touched_stores(self) -> list[str]:
        """Stores of every wave whose job was created (those that may run this release)."""
        return [t for w in self.waves if w.get("job_id") for t in w["things"]]

    def to_json(self) -> str:
        doc = asdict(self)
        del doc["etag"]
        doc["spec"] = self.spec.to_dict()
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> ReleaseRecord:
        doc = json.loads(text)
        doc["spec"] = RolloutSpec.from_dict(doc["spec"])
        return cls(**doc)


class ReleaseStore:
    """Release records and bundles in the releases bucket."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3, self.bucket = s3, bucket

    def versions(self) -> list[str]:
        """Every released version, oldest first (natural order: digit runs as numbers)."""
        found = set()
        for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=PREFIX):
            for item in page.get("Contents", []):
                version, _, name = item["Key"][len(PREFIX):].partition("/")
                if name == RECORD_FILE:
                    found.add(version)
        return sorted(found, key=version_key)

    def load(self, version: str) -> ReleaseRecord:
        try:
            response = self.s3.get_object(Bucket=self.bucket, Key=record_key(version))
        except self.s3.exceptions.NoSuchKey:
            raise ReleaseError(f"no release {version} in s3://{self.bucket}/{PREFIX}") from None
        record = ReleaseRecord.from_json(response["Body"].read())
        record.etag = response["ETag"]
        return record

    def latest(self) -> ReleaseRecord | None:
        versions = self.versions()
        return self.load(versions[-1]) if versions else None

    def save(self, record: ReleaseRecord) -> None:
        """Write ``record`` only over the version it was read as (a new one only if none
        exists); a :class:`ReleaseError` if another controller wrote meanwhile."""
        condition = {"IfMatch": record.etag} if record.etag else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket, Key=record_key(record.version),
                Body=record.to_json().encode(), ContentType="application/json", **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in _CONFLICTS:
                raise
            raise ReleaseError(f"release {record.version} was changed by another controller "
                               "meanwhile; nothing of this step was recorded (its jobs are "
                               "idempotent): run the step again") from exc
        record.etag = response["ETag"]
