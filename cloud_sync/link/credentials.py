"""A store's link credentials as a directory: `link.json` plus the certificate, its private
key, the CA to trust and (optionally) the chain's pseudonym key. The edge agent is pointed at
the directory (`EDGE_CLOUD_CREDENTIALS=/path/to/dir`); provisioning writes it."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

logger = logging.getLogger(__name__)

LINK_FILE = "link.json"
CERTIFICATE_FILE = "certificate.pem"
PRIVATE_KEY_FILE = "private.key"
CA_FILE = "ca.pem"
PSEUDONYM_KEY_FILE = "pseudonym.key"
PRIVATE_MODE = 0o600
REQUIRED_FIELDS = ("thing_name", "host", "port", "certificate", "private_key", "ca")


def _write_bytes(path: Path, data: bytes, *, private: bool) -> None:
    if private:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(path, PRIVATE_MODE)
    else:
        path.write_bytes(data)


def _place(source: Path, target: Path, *, private: bool) -> None:
    """Copy `source` to `target` unless it already is that file."""
    if source.resolve() == target.resolve():
        if private:
            os.chmod(target, PRIVATE_MODE)
        return
    if private:
        _write_bytes(target, source.read_bytes(), private=True)
    else:
        shutil.copyfile(source, target)


@dataclass(frozen=True)
class LinkCredentials:
    """Everything a store needs to open its MQTT link: who it is, where to, and with what."""

    thing_name: str
    host: str
    port: int
    certificate: Path
    private_key: Path
    ca: Path
    pseudonym_key: bytes | None = None

    def __repr__(self) -> str:  # the pseudonym key is a secret: never in a log line
        key = "<set>" if self.pseudonym_key else None
        return (f"LinkCredentials(thing_name={self.thing_name!r}, host={self.host!r}, "
                f"port={self.port}, certificate={str(self.certificate)!r}, ca={str(self.ca)!r}, "
                f"pseudonym_key={key})")

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def write(self, directory: Path) -> Path:
        """Write `link.json` and the files it names into `directory`; returns the json's path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _place(Path(self.certificate), directory / CERTIFICATE_FILE, private=False)
        _place(Path(self.private_key), directory / PRIVATE_KEY_FILE, private=True)
        _place(Path(self.ca), directory / CA_FILE, private=False)
        document: dict[str, Any] = {
            "thing_name": self.thing_name, "host": self.host, "port": self.port,
            "certificate": CERTIFICATE_FILE, "private_key": PRIVATE_KEY_FILE, "ca": CA_FILE,
        }
        if self.pseudonym_key is not None:
            _write_bytes(directory / PSEUDONYM_KEY_FILE, self.pseudonym_key, private=True)
            document["pseudonym_key_file"] = PSEUDONYM_KEY_FILE
        path = directory / LINK_FILE
        # Written last: a directory with link.json is complete, whatever crashed before.
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(document, indent=2) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, directory: Path) -> Self:
        """Read a credentials directory; a `ValueError` names what is missing or wrong."""
        directory = Path(directory)
        path = directory / LINK_FILE
        if not path.is_file():
            raise ValueError(f"link credentials: {path} is missing")
        try:
            document = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"link credentials: {path} is not valid JSON ({exc})") from None
        if not isinstance(document, dict):
            raise ValueError(f"link credentials: {path} must hold a JSON object")
        missing = [name for name in REQUIRED_FIELDS if document.get(name) in (None, "")]
        if missing:
            raise ValueError(f"link credentials: {path} lacks the field(s) {', '.join(missing)}")
        try:
            port = int(document["port"])
        except (TypeError, ValueError):
            raise ValueError(f"link credentials: {path}: port must be an integer, "
                             f"not {document['port']!r}") from None

        def existing(field: str) -> Path:
            file = directory / str(document[field])
            if not file.is_file():
                raise ValueError(f"link credentials: {field} file {file} is missing")
            return file

        pseudonym_key = None
        if document.get("pseudonym_key_file"):
            pseudonym_key = existing("pseudonym_key_file").read_bytes()
        return cls(thing_name=str(document["thing_name"]), host=str(document["host"]),
                   port=port, certificate=existing("certificate"),
                   private_key=existing("private_key"), ca=existing("ca"),
                   pseudonym_key=pseudonym_key)
