"""Job documents as a device receives them: the JSON object of `create_job(document=...)`
(or of the S3 object its `documentSource` names), with every
`${aws:iot:s3-presigned-url:<S3 URL>}` placeholder replaced by a presigned GET URL for the
object, as IoT Jobs does at delivery. Locally the URL points at moto's S3 (path style), so
plain urllib downloads it."""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

logger = logging.getLogger(__name__)

PRESIGNED_URL_PLACEHOLDER = re.compile(r"\$\{aws:iot:s3-presigned-url:([^}]+)\}")
# IoT Jobs' default when the job's presignedUrlConfig gives no expiresInSec (an hour).
DEFAULT_EXPIRES_S = 3600
# bucket.s3.amazonaws.com, bucket.s3.eu-west-1.amazonaws.com, bucket.s3-eu-west-1.amazonaws.com
VIRTUAL_HOSTED = re.compile(r"^(?P<bucket>.+)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")
PATH_STYLE = re.compile(r"^s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$")


class DocumentError(ValueError):
    """A placeholder names no S3 object we can presign."""


def s3_location(url: str) -> tuple[str, str]:
    """(bucket, key) of an S3 object URL, virtual-hosted or path style."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    path = unquote(parts.path).lstrip("/")
    hosted = VIRTUAL_HOSTED.match(host)
    if hosted and path:
        return hosted.group("bucket"), path
    if PATH_STYLE.match(host) and "/" in path:
        bucket, key = path.split("/", 1)
        if bucket and key:
            return bucket, key
    raise DocumentError(f"{url} is not an S3 object URL (https://<bucket>.s3.amazonaws.com/"
                        f"<key> or https://s3.amazonaws.com/<bucket>/<key>)")


class JobDocuments:
    """Renders job documents; `s3` is a boto3 S3 client for moto's endpoint (path style)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self._sources: dict[str, str] = {}  # documentSource URL -> its text, read once

    def source_text(self, url: str) -> str:
        """The text of a job's `documentSource` object (a job's document never changes)."""
        if url not in self._sources:
            bucket, key = s3_location(url)
            body = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            self._sources[url] = body.decode("utf-8")
        return self._sources[url]

    def presign(self, url: str, expires_s: int) -> str:
        bucket, key = s3_location(url)
        return str(self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_s))

    def render(self, document: str | None, presigned_url_config: dict[str, Any] | None,
               document_source: str | None = None) -> Any:
        """The document as JSON (a string if it is not JSON), placeholders presigned. A
        placeholder that names no S3 object is left as it is, and logged."""
        if document is None and document_source:
            try:
                document = self.source_text(document_source)
            except (DocumentError, BotoCoreError, ClientError, UnicodeDecodeError) as exc:
                # IoT Jobs refuses such a job at creation; moto does not, so say it here.
                logger.warning("job documentSource %s unreadable: %s", document_source, exc)
                return None
        if document is None:
            return None
        expires_s = int((presigned_url_config or {}).get("expiresInSec") or DEFAULT_EXPIRES_S)

        def replace(match: re.Match[str]) -> str:
            try:
                return self.presign(match.group(1), expires_s)
            except DocumentError as exc:
                logger.warning("job document placeholder left as is: %s", exc)
                return match.group(0)

        text = PRESIGNED_URL_PLACEHOLDER.sub(replace, document)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
