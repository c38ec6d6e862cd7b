"""The IoT job document and status details: the contract with the edge updater."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud_sync.release.document import (
    DocumentError,
    JobDocument,
    StatusDetails,
    presigned_placeholder,
)

GOOD: dict[str, Any] = {
    "operation": "install-bundle", "release": "2026.12.06-1", "version": "2026.12.06",
    "url": presigned_placeholder("instore-releases", "releases/2026.12.06/bundle.tar.gz"),
    "sha256": "ab" * 32, "bytes": 123456, "probation_s": 600, "max_error_rate": 0.01,
    "max_p99_ms": 250.0,
}


def test_round_trip_and_placeholder_shape() -> None:
    doc = JobDocument.from_dict(GOOD)
    assert JobDocument.from_json(doc.to_json()) == doc
    assert json.loads(doc.to_json()) == GOOD
    assert doc.url == ("${aws:iot:s3-presigned-url:https://instore-releases.s3.amazonaws.com/"
                       "releases/2026.12.06/bundle.tar.gz}")
    # What a store receives once IoT Jobs (or the local stand-in) presigned the URL.
    for url in ("https://instore-releases.s3.amazonaws.com/releases/x?X-Amz-Signature=1",
                "http://127.0.0.1:5000/instore-releases/releases/x?X-Amz-Signature=1"):
        assert JobDocument.from_dict({**GOOD, "url": url}).url == url
    assert JobDocument.from_dict({**GOOD, "operation": "rollback"}).operation == "rollback"


@pytest.mark.parametrize(
    ("change", "message"),
    [({"operation": "install"}, "operation"),
     ({"version": ""}, "version"),
     ({"url": "http://example.com/b.tar.gz"}, "https"),
     ({"url": "${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/k"}, "not closed"),
     ({"url": "${aws:iot:s3-presigned-url:https://b.s3.amazonaws.com/}"}, "no S3 object"),
     ({"sha256": "AB" * 32}, "sha256"),
     ({"bytes": -1}, "bytes"),
     ({"bytes": 0}, "bytes"),
     ({"bytes": True}, "bytes"),
     ({"probation_s": 1.5}, "probation_s"),
     ({"max_error_rate": 2.0}, "share"),
     ({"max_p99_ms": "fast"}, "max_p99_ms"),
     ({"extra": 1}, "unknown fields extra")],
)
def test_bad_documents_are_refused_naming_the_field(change: dict[str, Any], message: str
                                                    ) -> None:
    with pytest.raises(DocumentError, match=message):
        JobDocument.from_dict({**GOOD, **change})


def test_missing_fields_and_non_json_are_refused() -> None:
    with pytest.raises(DocumentError, match="lacks sha256"):
        JobDocument.from_dict({k: v for k, v in GOOD.items() if k != "sha256"})
    with pytest.raises(DocumentError, match="not JSON"):
        JobDocument.from_json("{nope")
    with pytest.raises(DocumentError, match="JSON object"):
        JobDocument.from_json("[]")


def test_status_details_are_a_string_map_without_empty_values() -> None:
    details = StatusDetails("serving", "2026.12.06", requests=1200, error_rate=0.002,
                            p99_ms=41.5)
    as_map = details.to_map()
    assert as_map == {"stage": "serving", "version": "2026.12.06", "requests": "1200",
                      "error_rate": "0.002", "p99_ms": "41.5"}
    assert all(isinstance(v, str) and v for v in as_map.values())
    assert StatusDetails.from_map(as_map) == details
    refused = StatusDetails("refused", "2026.12.06", reason="bad\nsignature" + "x" * 2000)
    reason = refused.to_map()["reason"]
    assert "\n" not in reason and len(reason) == 1024


@pytest.mark.parametrize(
    ("details", "message"),
    [(None, "no status"), ({"stage": "serving"}, "lack"),
     ({"stage": "dancing", "version": "1"}, "stage"),
     ({"stage": "serving", "version": "1", "error_rate": "high"}, "error_rate")],
)
def test_bad_status_details_are_refused(details: dict[str, str] | None, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        StatusDetails.from_map(details)
