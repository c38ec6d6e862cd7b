"""Local MQTT brokers for the demo and the tests: a `mosquitto` subprocess with a generated
configuration, and what the embedded `amqtt` broker (`edge_agent.embedded_broker`) shares.

amqtt (0.12) speaks MQTT 3.1.1 only, and does not redeliver unacknowledged QoS 1 messages
after a client drops. The edge agent connects with MQTT 5 and relies on redelivery, so the
demo prefers Mosquitto when the binary is installed and falls back to amqtt (with the agent
on MQTT 3.1.1) only when it is not.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from cloud_sync.local.process import end_process
from edge_agent.broker_auth import (
    ACL_FILE,
    PASSWD_FILE,
    StoreBrokerConfig,
    render_auth_lines,
    write_shared_broker_config,
)

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
# Long enough for a cold interpreter or a loaded CI machine, short enough to fail a test fast.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# Where distributions put the binary; /usr/sbin is often not on a normal user's PATH.
MOSQUITTO_CANDIDATES = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto",
                        "/opt/homebrew/sbin/mosquitto", "/usr/local/opt/mosquitto/sbin/mosquitto")
# Save the persistence file every second, so even a `kill -9` of the broker in a test loses
# at most a second of sessions and queued messages.
MOSQUITTO_AUTOSAVE_INTERVAL_S = 1
# Free ports picked for a broker that turned out to be taken before it could bind them.
PORT_ATTEMPTS = 3


class BrokerStartError(RuntimeError):
    """A local broker could not be started (binary missing, port taken, crashed at start)."""


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (the OS picks it; the caller binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the brokers themselves, so a port in TIME_WAIT after a restart counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float = START_TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        time.sleep(0.02)
    return False


def find_mosquitto() -> str | None:
    """The path of the `mosquitto` binary, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_CANDIDATES if os.access(p, os.X_OK)), None)


class _PortBound(Protocol):
    port: int
    _may_move: bool

    def _start_once(self) -> Any: ...


def start_on_a_free_port(broker: _PortBound) -> Any:
    """Start, moving to another free port if a port picked for us was taken meanwhile."""
    for attempt in range(PORT_ATTEMPTS):
        try:
            return broker._start_once()
        except BrokerStartError:
            if not broker._may_move or attempt == PORT_ATTEMPTS - 1:
                raise
            broker.port = free_port()
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------- mosquitto
@dataclass(frozen=True)
class MosquittoConfig:
    persistence: bool = True
    # 0 = no limit: a test or the demo publishes bursts far above the defaults (20 in flight,
    # 1,000 queued per client), and a slow subscriber must see them all, not lose them.
    max_inflight_messages: int = 0
    max_queued_messages: int = 0
    # The documented store setup (edge_agent/broker_auth.py): with both set, only the
    # accounts in the password file connect, each to its ACL's topics; else anonymous.
    password_file: Path | None = None
    acl_file: Path | None = None

    def render(self, port: int, data_dir: Path) -> str:
        if self.password_file is not None and self.acl_file is not None:
            access = render_auth_lines(self.password_file, self.acl_file)
        else:
            access = ["allow_anonymous true"]
        lines = [
            f"listener {port} {LOCALHOST}",
            *access,
            f"max_inflight_messages {self.max_inflight_messages}",
            f"max_queued_messages {self.max_queued_messages}",
            "set_tcp_nodelay true",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if os.geteuid() == 0:
            # Started as root, mosquitto drops to the `mosquitto` user, which cannot write our
            # private temp dir; a local demo/test broker keeps the caller's identity instead.
            lines.append("user root")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {data_dir}/",
                f"autosave_interval {MOSQUITTO_AUTOSAVE_INTERVAL_S}",
            ]
        else:
            lines.append("persistence false")
        return "\n".join(lines) + "\n"


class MosquittoBroker:
    """A `mosquitto` process on 127.0.0.1:`port`; restartable with its sessions kept on disk."""

    mqtt_protocol = "5"  # what clients of this broker should speak (Settings.mqtt_protocol)

    def __init__(self, port: int = 0, config_dir: Path | str | None = None,
                 config: MosquittoConfig | None = None, binary: str | None = None) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        # A port picked for us can be taken by someone else before mosquitto binds it; then
        # the first start may move to another one (never a restart: clients know the port).
        self._may_move = port == 0
        self._own_dir = config_dir is None
        self.config_dir = Path(config_dir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.config = config or MosquittoConfig()
        self.binary = binary or find_mosquitto()
        self._process: subprocess.Popen[bytes] | None = None
        # The store accounts its password file holds, by store id (empty: anonymous).
        self.accounts: dict[str, StoreBrokerConfig] = {}

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        if self.binary is None:
            raise BrokerStartError("mosquitto is not installed (apt-get install mosquitto)")
        if self.running:
            return self
        return start_on_a_free_port(self)

    def _start_once(self) -> Self:
        if not port_is_free(self.host, self.port):
            # Checked first: otherwise waiting for the port would find the other listener.
            raise BrokerStartError(f"port {self.port} is already in use")
        self.config_dir.mkdir(parents=True, exist_ok=True)
        conf = self.config_dir / "mosquitto.conf"
        conf.write_text(self.config.render(self.port, self.config_dir))
        log = (self.config_dir / "mosquitto.log").open("ab")
        # Its own session: a Ctrl-C in the terminal goes to the whole foreground process
        # group, and the broker must outlive the agent's last commit; we stop it ourselves.
        self._process = subprocess.Popen([self.binary, "-c", str(conf)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        if not wait_for_port(self.host, self.port) or not self.running:
            self.stop()
            raise BrokerStartError(f"mosquitto did not start on port {self.port}; see "
                                   f"{self.config_dir / 'mosquitto.log'}")
        logger.info("mosquitto listening on %s (config %s)", self.url, conf)
        self._may_move = False
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM): mosquitto saves its persistence file on the way out."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """Abrupt stop (SIGKILL): what a power cut does; only the last autosave survives."""
        self._signal(signal.SIGKILL)

    def restart(self, *, hard: bool = False) -> None:
        (self.kill if hard else self.stop)()
        self.start()

    def _signal(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        end_process(process, sig)

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.config_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def start_mosquitto(port: int = 0, config_dir: Path | str | None = None,
                    config: MosquittoConfig | None = None) -> MosquittoBroker:
    """Start a `mosquitto` subprocess with a generated config; stop it with `.close()`."""
    return MosquittoBroker(port, config_dir, config).start()


def start_store_mosquitto(store_ids: Sequence[str]) -> MosquittoBroker:
    """Mosquitto closed as the documented store setup is (edge_agent/broker_auth.py): an
    account per device class of each store, the ACL, no anonymous clients. The accounts are
    in `broker.accounts`; the files go when the broker is closed."""
    config_dir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
    accounts = write_shared_broker_config(store_ids, config_dir / "accounts")
    config = MosquittoConfig(password_file=config_dir / "accounts" / PASSWD_FILE,
                             acl_file=config_dir / "accounts" / ACL_FILE)
    broker = MosquittoBroker(config_dir=config_dir, config=config)
    broker._own_dir = True  # passwords in clear inside: removed with the broker
    broker.accounts = accounts
    return broker.start()
