"""The local stand-in for AWS IoT Core's MQTT endpoint: a `mosquitto` subprocess with a TLS
listener only, a client certificate per store (CN = thing name = store id) and an ACL with the
same effect as the store IoT policy (`cloud_sync.fleet.policy`), generated from
`cloud_sync.topics` so the two cannot drift.

Differences from IoT Core that matter little here: mosquitto cannot tie the client id to the
certificate's CN (the policy's `iot:Connect` on `client/${thing}`), so any client id is let in
with a valid certificate; its ACL fences the *topics* by CN, which is what the policy is for.
Observable differences (Mosquitto 2.0.11), which clients must tolerate:
- a SUBSCRIBE to another store's topics is granted, and the ACL then withholds every message
  (IoT Core answers the SUBSCRIBE with 0x87 instead); a denied PUBLISH gets PUBACK 0x87 in both;
- a PUBLISH nobody subscribes to gets PUBACK 0x10 (no matching subscribers), not 0x00: both
  are successes (below 0x80);
- after a restart, persistent sessions come back without their `$share/...` subscriptions
  (`cloud_sync.link.mqtt` subscribes again on every reconnect).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from cloud_sync.link.credentials import LinkCredentials
from cloud_sync.local.pki import LocalCA, write_private
from cloud_sync.local.process import end_process
from cloud_sync.topics import command_prefix, jobs_prefix, telemetry_prefix

logger = logging.getLogger(__name__)

# The identity (certificate CN) of the cloud services (lake workers, downlink, jobs service):
# the local counterpart of their IAM role, allowed every topic.
CLOUD_IDENTITY = "cloud-sync"
# The identity of the local IoT Jobs device service (`cloud_sync.local.jobs`): it answers on
# every thing's Jobs topics and may touch nothing else.
JOBS_IDENTITY = "iot-jobs"
LOCALHOST = "127.0.0.1"
# Clients connect by name: the server certificate carries "localhost" and 127.0.0.1.
ENDPOINT_HOST = "localhost"
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto",
                        "/opt/homebrew/sbin/mosquitto")
# IoT Core refuses payloads over 128 KiB; a packet also carries the topic (IoT Core: at most
# 256 bytes), properties and fixed header, so the packet limit sits a little above.
IOT_CORE_MAX_PAYLOAD = 128 * 1024
PACKET_HEADER_SLACK = 2048
MAX_PACKET_SIZE = IOT_CORE_MAX_PAYLOAD + PACKET_HEADER_SLACK
# IoT Core's in-flight limit for QoS 1 publishes to a client.
MAX_INFLIGHT_MESSAGES = 100
# A store that was offline for a day can have this much queued for it; 0 bytes = no byte cap.
MAX_QUEUED_MESSAGES = 1_000_000
MAX_QUEUED_BYTES = 0
# Save sessions every second (mosquitto waits for more than that many whole seconds: every 2 s
# in practice), so a SIGKILL loses at most the last two seconds of queued messages.
AUTOSAVE_INTERVAL_S = 1
START_TIMEOUT_S = 10.0
PROBE_IDENTITY = "local-readiness-probe"  # has no ACL rights: it only shakes hands
LOG_TAIL_LINES = 20


class BrokerError(RuntimeError):
    """The local broker could not be started or did not come up in time."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it; the broker binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


def render_acl() -> str:
    """The ACL equal in effect to the store policy: `%u` is the certificate's CN."""
    store = "%u"
    return "\n".join([
        "# Generated from cloud_sync.topics; the store IoT policy in ACL form.",
        f"user {CLOUD_IDENTITY}",
        "topic readwrite #",
        "",
        f"user {JOBS_IDENTITY}",
        f"topic readwrite {jobs_prefix('+')}#",
        "",
        f"pattern write {telemetry_prefix(store)}#",
        f"pattern write {jobs_prefix(store)}#",
        f"pattern read {command_prefix(store)}#",
        f"pattern read {jobs_prefix(store)}#",
        "",
    ])


class TlsBroker:
    """`mosquitto` with a TLS listener on 127.0.0.1, keeping its sessions across restarts."""

    def __init__(self, directory: Path, ca: LocalCA | None = None, port: int = 0,
                 binary: str | None = None) -> None:
        self.directory = Path(directory)
        self.ca = ca or LocalCA.open_or_create(self.directory / "ca")
        self.host = ENDPOINT_HOST
        self.port = port or free_port()
        self.binary = binary or find_mosquitto()
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------------------ files
    @property
    def ca_path(self) -> Path:
        return self.ca.ca_path

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_files(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        server_cert, server_key = self.directory / "server.pem", self.directory / "server.key"
        if not server_cert.exists() or not server_key.exists():
            cert, key = self.ca.issue("localhost", server_names=("localhost", LOCALHOST))
            server_cert.write_bytes(cert)
            write_private(server_key, key)
        (self.directory / "acl").write_text(render_acl())
        (self.directory / "data").mkdir(exist_ok=True)
        lines = [
            # Global settings, then one TLS listener; no plain-TCP listener at all.
            "per_listener_settings false",
            "allow_anonymous false",
            f"acl_file {self.directory / 'acl'}",
            "persistence true",
            f"persistence_location {self.directory / 'data'}/",
            f"autosave_interval {AUTOSAVE_INTERVAL_S}",
            f"max_packet_size {MAX_PACKET_SIZE}",
            f"max_inflight_messages {MAX_INFLIGHT_MESSAGES}",
            f"max_queued_messages {MAX_QUEUED_MESSAGES}",
            f"max_queued_bytes {MAX_QUEUED_BYTES}",
            f"log_dest file {self.log_path}",
            "log_type error", "log_type warning", "log_type notice", "log_type information",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            f"listener {self.port} {LOCALHOST}",
            f"cafile {self.ca_path}",
            f"certfile {server_cert}",
            f"keyfile {server_key}",
            "require_certificate true",
            "use_identity_as_username true",
            "tls_version tlsv1.2",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto would drop to the `mosquitto` user, which cannot read our
            # private key files; a local stand-in keeps the caller's identity instead.
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")
        if not (self.directory / "probe.pem").exists():
            cert, key = self.ca.issue(PROBE_IDENTITY)
            (self.directory / "probe.pem").write_bytes(cert)
            write_private(self.directory / "probe.key", key)

    # -------------------------------------------------------------------------- lifecycle
    def start(self) -> Self:
        if self.binary is None:
            raise BrokerError("mosquitto is not installed (apt-get install mosquitto)")
        if self.running:
            return self
        self._write_files()
        # Its own session: a Ctrl-C in a terminal must not reach the broker before its owner
        # has stopped its clients; the owner stops it.
        with (self.directory / "stderr.log").open("ab") as stderr:
            self._process = subprocess.Popen(
                [self.binary, "-c", str(self.config_path)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
        self._wait_ready()
        logger.info("local IoT broker on mqtts://%s:%d (dir %s)", self.host, self.port,
                    self.directory)
        return self

    def _handshake(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.ca_path))
        context.load_cert_chain(self.directory / "probe.pem", self.directory / "probe.key")
        try:
            with socket.create_connection((LOCALHOST, self.port), timeout=1.0) as raw, \
                    context.wrap_socket(raw, server_hostname="localhost") as tls:
                # A clean TLS close, so the broker logs no "unexpected eof" for each probe.
                with contextlib.suppress(OSError, ssl.SSLError):
                    tls.unwrap()
                return True
        except (OSError, ssl.SSLError):
            return False

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.running:
                break
            if self._handshake():
                return
            time.sleep(0.05)
        exited = not self.running
        self._signal(signal.SIGKILL)
        what = "exited at start" if exited else f"did not accept TLS within {START_TIMEOUT_S}s"
        raise BrokerError(f"mosquitto on port {self.port} {what}; log tail:\n{self.log_tail()}")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = ""
        for path in (self.log_path, self.directory / "stderr.log"):
            with contextlib.suppress(OSError):
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(empty)"

    def stop(self) -> None:
        """Graceful stop (SIGTERM): mosquitto writes its sessions to disk on the way out."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): only the last autosave (at most ~2 s old) survives."""
        self._signal(signal.SIGKILL)

    def restart(self, *, hard: bool = False) -> None:
        """Stop and start again on the same port (clients know it); waits for TLS."""
        (self.kill if hard else self.stop)()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        end_process(process, sig)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------------ identities
    def credentials(self, identity: str, client_dir: Path | None = None) -> LinkCredentials:
        """A client certificate with CN = `identity`, written under the broker's directory."""
        target = Path(client_dir) if client_dir else self.directory / "clients" / identity
        return issue_credentials(self.ca, identity, self.host, self.port, target)


def issue_credentials(ca: LocalCA, identity: str, host: str, port: int,
                      target: Path) -> LinkCredentials:
    """A client certificate with CN = `identity` from the local CA, written to `target`."""
    target.mkdir(parents=True, exist_ok=True)
    cert, key = ca.issue(identity)
    (target / "certificate.pem").write_bytes(cert)
    write_private(target / "private.key", key)
    return LinkCredentials(thing_name=identity, host=host, port=port,
                           certificate=target / "certificate.pem",
                           private_key=target / "private.key", ca=ca.ca_path)
