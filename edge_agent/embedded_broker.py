"""An embedded `amqtt` broker, for the demo where Mosquitto is not installed, and tests.

amqtt (0.12) speaks MQTT 3.1.1 only, and does not redeliver unacknowledged QoS 1 messages
after a client drops; the demo prefers Mosquitto (`edge_agent.broker`). Its own module so
that a store's install, which has no amqtt (the `[demo]` extra), never imports it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from amqtt.broker import Broker
from amqtt.plugins.base import BaseAuthPlugin
from amqtt.session import Session

from edge_agent.broker import (
    LOCALHOST,
    START_TIMEOUT_S,
    STOP_TIMEOUT_S,
    BrokerStartError,
    free_port,
    start_on_a_free_port,
)

logger = logging.getLogger(__name__)

# amqtt and its state-machine library log every connection's transitions at INFO: noise in
# the demo's console. Their warnings and errors still show.
CHATTY_LOGGERS = ("amqtt", "transitions")

class AcceptAllAuthPlugin(BaseAuthPlugin):
    """Lets every client in *without* flagging it anonymous.

    amqtt's own AnonymousAuthPlugin marks sessions anonymous, and amqtt then never queues QoS 1
    messages for a disconnected anonymous session; the demo and tests need those queued.
    """

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session: Session) -> bool:
        return True


class EmbeddedBroker:
    """An amqtt broker on 127.0.0.1 in a background thread with its own asyncio loop.

    Supports QoS 1 and persistent sessions (clean_session=False: subscriptions kept and QoS 1
    messages queued while the client is away) for MQTT 3.1.1 clients, in memory only — a
    restart forgets everything. Limits found with amqtt 0.12.1: MQTT 5 clients are refused
    (a plain CONNECT gets "unsupported protocol version"; one carrying MQTT 5 properties is
    dropped without a CONNACK), and messages delivered but not yet acknowledged when a client
    drops abruptly are not redelivered when it comes back — so it is good enough for the demo
    on a machine without Mosquitto, not for the agent's no-loss guarantees.
    """

    mqtt_protocol = "3.1.1"

    def __init__(self, port: int = 0) -> None:
        self.host = LOCALHOST
        self.port = port or free_port()
        self._may_move = port == 0  # as for MosquittoBroker: a picked port may be taken
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # Only our auth plugin: no $SYS publishing, no per-packet logging.
            "plugins": {f"{__name__}.AcceptAllAuthPlugin": {}},
        }

    def start(self) -> Self:
        if self._thread is not None:
            return self
        for name in CHATTY_LOGGERS:
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)
        return start_on_a_free_port(self)

    def _start_once(self) -> Self:
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._broker = Broker(self._config(), loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name="embedded-mqtt-broker", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT_S) or failure:
            self._thread = None
            raise BrokerStartError(f"embedded broker did not start on port {self.port}: "
                                   f"{failure[0] if failure else 'timeout'}")
        logger.info("embedded amqtt broker listening on %s", self.url)
        self._may_move = False
        return self

    def stop(self) -> None:
        thread, loop, broker = self._thread, self._loop, self._broker
        self._thread = None
        if thread is None or loop is None or broker is None:
            return
        future = asyncio.run_coroutine_threadsafe(broker.shutdown(), loop)
        try:
            future.result(STOP_TIMEOUT_S)
        except Exception:
            logger.warning("embedded broker did not shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT_S)

    def close(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
