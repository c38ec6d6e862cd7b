"""The release controller: one step at a time, every decision recorded with its reason.

``step`` evaluates the wave in flight (:func:`~cloud_sync.release.decide.decide`) and acts:
start the next wave, mark the release complete, or abort. ``abort`` cancels the wave's job
and sends a rollback job to every store that took (or was taking) the release; ``rollback``
does the same for a release that completed. ``watch`` repeats ``step`` until the release
is settled."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Any

from cloud_sync.release import jobs
from cloud_sync.release.create import Clock, _utc_now, start_wave
from cloud_sync.release.decide import (
    ABORT,
    COMPLETE,
    PROMOTE,
    WAIT,
    Decision,
    decide,
    wave_evidence,
)
from cloud_sync.release.document import ROLLBACK, JobDocument
from cloud_sync.release.record import (
    ABORTED,
    ROLLED_BACK,
    ROLLING_OUT,
    ReleaseError,
    ReleaseRecord,
    ReleaseStore,
    timestamp,
)
from cloud_sync.release.record import COMPLETE as RELEASE_COMPLETE
from cloud_sync.release.waves import thing_of

logger = logging.getLogger(__name__)

DONE = "done"  # step's action once the release is settled
# Stores that may serve the release: those that finished, and those still in probation
# (a force-canceled store rolls back by itself; the rollback job makes sure of it).
TOOK_RELEASE = frozenset({"SUCCEEDED", "IN_PROGRESS"})
WATCH_INTERVAL_S = 5.0


class ReleaseController:
    def __init__(self, iot: Any, s3: Any, bucket: str, role_arn: str,
                 clock: Clock = _utc_now) -> None:
        self.iot, self.role_arn, self.clock = iot, role_arn, clock
        self.store = ReleaseStore(s3, bucket)

    def record(self, version: str | None = None) -> ReleaseRecord:
        """The release ``version``, or the latest one."""
        if version:
            return self.store.load(version)
        latest = self.store.latest()
        if latest is None:
            raise ReleaseError(f"no release in s3://{self.store.bucket}/releases/")
        return latest

    # ---------------------------------------------------------------------------- status
    def status(self, version: str | None = None) -> dict[str, Any]:
        """The record and, per wave with a job, its executions and reported details."""
        record = self.record(version)
        waves = []
        for wave in record.waves:
            row = {k: wave[k] for k in ("index", "label", "job_id")} | {
                "stores": len(wave["things"])}
            if wave["job_id"]:
                executions = jobs.executions(self.iot, wave["job_id"])
                row["job_status"] = jobs.job_status(self.iot, wave["job_id"])
                row["counts"] = dict(Counter(str(e["status"]) for e in executions))
                row["executions"] = [
                    {"thing": thing_of(e["thingArn"]), "status": e["status"],
                     "details": (e.get("statusDetails") or {}).get("detailsMap") or {}}
                    for e in executions]
                row["evidence"] = wave_evidence(record.spec, record.version, executions)
            waves.append(row)
        return {"version": record.version, "release_id": record.release_id,
                "status": record.status, "current": record.current, "waves": waves,
                "decisions": record.decisions, "rollbacks": record.rollbacks}

    # ------------------------------------------------------------------------------ step
    def step(self, version: str | None = None) -> Decision:
        """One controller step on the wave in flight (``release promote``)."""
        record = self.record(version)
        if record.status != ROLLING_OUT:
            return Decision(DONE, f"release {record.version} is {record.status}")
        now = self.clock()
        wave = record.waves[record.current]
        if not wave["job_id"]:  # a crash between saving the record and creating the job
            start_wave(self.iot, record, record.current, self.role_arn, now)
            self._note(record, Decision(PROMOTE, "wave job created after an interruption"))
            self.store.save(record)
        executions = jobs.executions(self.iot, wave["job_id"])
        last = record.current == len(record.waves) - 1
        decision = decide(record.spec, record.version, wave["things"], executions, now,
                          last_wave=last, job_status=jobs.job_status(self.iot, wave["job_id"]),
                          started=datetime.fromisoformat(wave["created_at"]))
        if decision.action == ABORT:
            self._stop(record, decision.reason, ABORTED)
            return decision
        if decision.action == PROMOTE:
            start_wave(self.iot, record, record.current + 1, self.role_arn, now)
            nxt = record.waves[record.current]
            decision = Decision(PROMOTE, f"{decision.reason}; wave {record.current} "
                                         f"({nxt['label']}, {len(nxt['things'])} stores) started")
            self._note(record, decision, wave=record.current - 1)
        elif decision.action == COMPLETE:
            record.status = RELEASE_COMPLETE
            self._note(record, decision)
        elif self._is_new(record, decision):
            self._note(record, decision)
        else:
            return decision  # the same wait as last time: nothing to record
        self.store.save(record)
        return decision

    # ------------------------------------------------------------------ abort, rollback
    def abort(self, version: str | None = None, reason: str = "aborted by an operator"
              ) -> ReleaseRecord:
        record = self.record(version)
        if record.status != ROLLING_OUT:
            raise ReleaseError(f"release {record.version} is {record.status}, not rolling out;"
                               " use `release rollback` for a completed release")
        return self._stop(record, reason, ABORTED)

    def rollback(self, version: str | None = None, reason: str = "rolled back by an operator"
                 ) -> ReleaseRecord:
        record = self.record(version)
        latest = self.store.latest()
        if latest is not None and latest.version != record.version:
            raise ReleaseError(f"release {record.version} is not the latest ({latest.version});"
                               " roll back the latest first")
        if record.status in (ABORTED, ROLLED_BACK):
            raise ReleaseError(f"release {record.version} is already {record.status}")
        return self._stop(record, reason, ROLLED_BACK)

    def _stop(self, record: ReleaseRecord, reason: str, status: str) -> ReleaseRecord:
        now = self.clock()
        wave = record.waves[record.current]
        # Who took the release is read before the cancel: a force-cancel turns in-progress
        # executions into CANCELED, and those stores may already serve the new bundle.
        took = self.stores_that_took(record)
        # Earlier waves too, and those of a completed release: a wave judged at its deadline
        # still holds the queued executions of stores that were offline, which must not
        # take a stopped release when they are back.
        for job in [w["job_id"] for w in record.waves if w["job_id"]]:
            current = record.status == ROLLING_OUT and job == wave["job_id"]
            if current or jobs.job_status(self.iot, job) == "IN_PROGRESS":
                jobs.cancel_job(self.iot, job, reason)
        record.status = status
        self._note(record, Decision(ABORT if status == ABORTED else ROLLBACK, reason))
        if not took:
            record.log(now, ROLLBACK, "no store had taken the release: nothing to roll back")
        elif record.previous is None:
            record.log(now, ROLLBACK, f"{len(took)} stores took the release but there is no "
                       "earlier release to go back to; they keep serving it")
        else:
            self._send_rollback(record, took, reason, now)
        self.store.save(record)
        return record

    def stores_that_took(self, record: ReleaseRecord) -> list[str]:
        took: list[str] = []
        for wave in record.waves:
            if wave["job_id"]:
                took += [thing_of(e["thingArn"]) for e in jobs.executions(self.iot, wave["job_id"])
                         if e["status"] in TOOK_RELEASE]
        return sorted(set(took))

    def _send_rollback(self, record: ReleaseRecord, stores: list[str], reason: str,
                       now: Any) -> None:
        previous = record.previous
        assert previous is not None
        spec = record.spec
        document = JobDocument(operation=ROLLBACK, release=record.release_id,
                               version=previous["version"], url=previous["url"],
                               sha256=previous["sha256"], bytes=previous["bytes"],
                               probation_s=spec.probation_s,
                               max_error_rate=spec.max_error_rate, max_p99_ms=spec.max_p99_ms)
        job = jobs.job_id(record.release_id, f"rb{len(record.rollbacks)}")
        jobs.create_job(self.iot, job, stores, document,
                        jobs.rollback_job_config(spec, self.role_arn),
                        f"roll back {record.version} to {previous['version']}")
        record.rollbacks.append({"job_id": job, "version": previous["version"],
                                 "things": stores, "created_at": timestamp(now),
                                 "reason": reason})
        record.log(now, ROLLBACK, f"{len(stores)} stores sent back to {previous['version']} "
                   f"(job {job})")

    # ------------------------------------------------------------------------- helpers
    def _note(self, record: ReleaseRecord, decision: Decision, wave: int | None = None) -> None:
        record.log(self.clock(), decision.action, decision.reason, wave=wave)

    @staticmethod
    def _is_new(record: ReleaseRecord, decision: Decision) -> bool:
        last = record.decisions[-1] if record.decisions else {}
        return (last.get("action"), last.get("reason")) != (decision.action, decision.reason)

    # --------------------------------------------------------------------------- watch
    def watch(self, version: str | None = None, interval_s: float = WATCH_INTERVAL_S,
              timeout_s: float | None = None,
              on_decision: Callable[[Decision], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> Decision:
        """Step every ``interval_s`` until the release completes or is stopped (or the
        timeout passes: then the last decision, a wait, is returned)."""
        version = self.record(version).version
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        previous: Decision | None = None
        while True:
            decision = self.step(version)
            if on_decision and decision != previous:
                on_decision(decision)
            previous = decision
            if decision.action in (COMPLETE, ABORT, DONE):
                return decision
            if deadline is not None and time.monotonic() >= deadline:
                return decision
            assert decision.action in (WAIT, PROMOTE)
            sleep(interval_s)

