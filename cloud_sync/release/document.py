"""The contract between the release controller and a store's updater, over AWS IoT Jobs.

**Job document** (what ``create_job(document=...)`` carries; :class:`JobDocument`)::

    {"operation": "install-bundle" | "rollback", "release": "<release id>",
     "version": "<bundle version to serve>",
     "url": "${aws:iot:s3-presigned-url:https://<bucket>.s3.amazonaws.com/<key>}",
     "sha256": "<hex of the .tar.gz>", "bytes": <size of the .tar.gz>,
     "probation_s": <int>, "max_error_rate": <float>, "max_p99_ms": <float>}

IoT Jobs replaces the ``${aws:iot:s3-presigned-url:...}`` placeholder with a presigned GET
URL when it delivers the document, so a store sees an ``https://`` URL (locally, the
stand-in presigns for moto on a loopback ``http://`` address). For ``rollback``,
``version`` is the version to go back to and ``url``/``sha256``/``bytes`` name that bundle
(the store may already hold it and skip the download).

**Status details** (what a store reports with each execution update; IoT statusDetails is a
string→string map whose values must be non-empty; :class:`StatusDetails`): ``stage``
(downloading | verifying | probation | serving | refused | rolled-back), ``version``, and,
when known, ``reason``, ``requests``, ``error_rate``, ``p99_ms`` (the store's health over
its probation), and the recommendations' click-through: ``ctr_after`` and
``impressions_after`` for the new version over the probation, ``ctr_before`` and
``impressions_before`` for the version served before, over a window before the swap.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

INSTALL = "install-bundle"
ROLLBACK = "rollback"
OPERATIONS = (INSTALL, ROLLBACK)
STAGES = ("downloading", "verifying", "probation", "serving", "refused", "rolled-back")
PRESIGNED_PREFIX = "${aws:iot:s3-presigned-url:"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
# Loopback hosts may be plain http: the local IoT Jobs stand-in presigns for moto's S3.
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# IoT Jobs' limit on one statusDetails value; longer reasons are cut, never refused.
MAX_DETAIL_CHARS = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# StatusDetails' optional numbers, by kind (both are sent as decimal strings).
_COUNTS = ("requests", "impressions_before", "impressions_after")
_MEASURES = ("error_rate", "p99_ms", "ctr_before", "ctr_after")


class DocumentError(ValueError):
    """A job document or status details map breaks the contract; the message says where."""


def presigned_placeholder(bucket: str, key: str) -> str:
    """The ``url`` of a job document for ``s3://bucket/key``, as IoT Jobs expects it."""
    return f"{PRESIGNED_PREFIX}https://{bucket}.s3.amazonaws.com/{key}}}"


def _check_url(url: str) -> None:
    inner = url
    if url.startswith(PRESIGNED_PREFIX):
        if not url.endswith("}"):
            raise DocumentError(f"url {url!r}: presigned-url placeholder is not closed")
        inner = url[len(PRESIGNED_PREFIX):-1]
    parts = urlsplit(inner)
    loopback_http = parts.scheme == "http" and parts.hostname in _LOOPBACK
    if not (parts.scheme == "https" or loopback_http) or not parts.hostname:
        raise DocumentError(f"url {url!r} is not an https URL")
    if inner is not url and not parts.path.strip("/"):
        raise DocumentError(f"url {url!r}: the placeholder names no S3 object key")


def _number(name: str, value: Any, kind: type) -> Any:
    # bool is an int in Python, never a valid size or threshold here.
    ok = isinstance(value, int) if kind is int else isinstance(value, int | float)
    if isinstance(value, bool) or not ok or not math.isfinite(value) or value < 0:
        raise DocumentError(f"{name} must be a non-negative {kind.__name__}, got {value!r}")
    return kind(value)


@dataclass(frozen=True)
class JobDocument:
    operation: str
    release: str
    version: str
    url: str
    sha256: str
    bytes: int
    probation_s: int
    max_error_rate: float
    max_p99_ms: float

    def __post_init__(self) -> None:
        if self.operation not in OPERATIONS:
            raise DocumentError(f"operation must be one of {OPERATIONS}, got {self.operation!r}")
        for name in ("release", "version", "url"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise DocumentError(f"{name} must be a non-empty string, got {value!r}")
        _check_url(self.url)
        if not isinstance(self.sha256, str) or not _SHA256_HEX.match(self.sha256):
            raise DocumentError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if _number("bytes", self.bytes, int) == 0:
            raise DocumentError("bytes must be the archive's size, got 0")
        _number("probation_s", self.probation_s, int)
        object.__setattr__(self, "max_error_rate",
                           _number("max_error_rate", self.max_error_rate, float))
        object.__setattr__(self, "max_p99_ms", _number("max_p99_ms", self.max_p99_ms, float))
        if self.max_error_rate > 1:
            raise DocumentError(f"max_error_rate is a share (0..1), got {self.max_error_rate}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, doc: Any) -> JobDocument:
        if not isinstance(doc, Mapping):
            raise DocumentError(f"a job document is a JSON object, got {type(doc).__name__}")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - set(doc))
        if missing:
            raise DocumentError(f"job document lacks {', '.join(missing)}")
        unknown = sorted(set(doc) - names)
        if unknown:
            raise DocumentError(f"job document has unknown fields {', '.join(unknown)}")
        return cls(**{name: doc[name] for name in names})

    @classmethod
    def from_json(cls, text: str | bytes) -> JobDocument:
        try:
            doc = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise DocumentError(f"job document is not JSON: {exc}") from exc
        return cls.from_dict(doc)


def _clean(value: str) -> str:
    return _CONTROL.sub(" ", value).strip()[:MAX_DETAIL_CHARS]


@dataclass(frozen=True)
class StatusDetails:
    """A store's report on one execution: where it is, and its health once serving."""

    stage: str
    version: str
    reason: str = ""
    requests: int | None = None
    error_rate: float | None = None
    p99_ms: float | None = None
    ctr_before: float | None = None
    impressions_before: int | None = None
    ctr_after: float | None = None
    impressions_after: int | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise DocumentError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if not isinstance(self.version, str) or not self.version.strip():
            raise DocumentError(f"version must be a non-empty string, got {self.version!r}")
        for name in _COUNTS:
            if getattr(self, name) is not None:
                _number(name, getattr(self, name), int)
        for name in _MEASURES:
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _number(name, value, float))
        for name in ("ctr_before", "ctr_after"):
            value = getattr(self, name)
            if value is not None and value > 1:
                raise DocumentError(f"{name} is a share (0..1), got {value}")

    def to_map(self) -> dict[str, str]:
        """The ``statusDetails`` map: strings only, empty fields left out (IoT refuses them)."""
        out = {"stage": self.stage, "version": _clean(self.version)}
        if _clean(self.reason):
            out["reason"] = _clean(self.reason)
        for name in _COUNTS:
            if getattr(self, name) is not None:
                out[name] = str(getattr(self, name))
        for name in _MEASURES:
            if getattr(self, name) is not None:
                out[name] = repr(getattr(self, name))
        return out

    @classmethod
    def from_map(cls, details: Mapping[str, str] | None) -> StatusDetails:
        """Parse a ``statusDetails`` map; unknown keys are ignored (a newer store may add)."""
        if not details:
            raise DocumentError("no status details reported")
        if "stage" not in details or "version" not in details:
            raise DocumentError(f"status details lack stage or version: {dict(details)}")

        def parse(name: str, kind: type) -> Any:
            raw = details.get(name)
            if raw is None:
                return None
            try:
                return kind(raw)
            except ValueError:
                raise DocumentError(f"status detail {name}={raw!r} is not a {kind.__name__}"
                                    ) from None

        return cls(stage=details["stage"], version=details["version"],
                   reason=details.get("reason", ""),
                   **{name: parse(name, int) for name in _COUNTS},
                   **{name: parse(name, float) for name in _MEASURES})
