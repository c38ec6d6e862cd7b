"""The agent's one settings object: command-line flags, then environment (`EDGE_*`), then an
optional TOML config file (`EDGE_CONFIG` or `--config`), then defaults.

A bad value fails at start-up with the setting's name in the message (`SettingsError`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AwareDatetime,
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

ENV_PREFIX = "EDGE_"
CONFIG_ENV_VAR = "EDGE_CONFIG"
# Store ids become MQTT topic segments and AWS IoT thing names: keep them to a safe alphabet.
STORE_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_MQTT_PORT = 1883
DEFAULT_MQTTS_PORT = 8883


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting."""


class BrokerAddress(BaseModel):
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"scheme must be mqtt:// or mqtts://, got {url!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {url!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (DEFAULT_MQTTS_PORT if tls else DEFAULT_MQTT_PORT)
    except ValueError as exc:
        raise ValueError(f"bad port in {url!r}") from exc
    return BrokerAddress(host=parts.hostname, port=port, tls=tls)


Role = Literal["display", "kiosk", "staff", "admin"]


# A key a device sends with every request: long enough not to be guessed by trying.
MIN_API_KEY_LENGTH = 16


class ApiKey(BaseModel):
    """A device's or person's key. The name is what logs show; the key itself never is."""

    name: str
    role: Role
    key: SecretStr

    @field_validator("key")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        length = len(value.get_secret_value())
        if length < MIN_API_KEY_LENGTH:
            raise ValueError(f"an API key must be at least {MIN_API_KEY_LENGTH} characters"
                             f" long; this one has {length}")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid",
                                      validate_default=True)

    store_id: str = "store-001"
    # None means "no broker configured": `demo` then starts the embedded one.
    broker: str | None = None
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    db: Path = Path("edge.db")
    http_host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # HTTP worker processes. One process serves HTTP beside ingestion; with more, the agent
    # process keeps ingestion and each worker answers requests on its own core (the handlers
    # are CPU-bound Python: one process holds one core at most, whatever its threads).
    http_workers: int = Field(default=1, ge=1, le=32)
    # The store's layout: a shipped one by name (convenience, supermarket, hypermarket) or
    # the path of a layout file (docs/store-layouts.md).
    layout: str = "supermarket"
    # How often routes are re-priced from zone.traffic head counts.
    congestion_interval_s: float = Field(default=15.0, gt=0)
    # Models: bundles must verify against the fleet public key (ECDSA P-256 PEM). The bundle
    # folder (`model_bundle_dir`, default `bundles/` beside the database) holds the verified
    # bundles and the record of the version served; a restart serves that version. A newer
    # bundle dropped into the folder is served when seen; `model_bundle` is offered at start.
    model_public_key: Path | None = None
    # The public half of the key this store signs its own bundles with (`edge-agent train`):
    # trusted beside the fleet's, so a store can serve its own models and the chain's.
    model_store_key: Path | None = None
    model_bundle: Path | None = None
    model_bundle_dir: Path | None = None
    model_watch_interval_s: float = Field(default=10.0, gt=0)
    # Installed bundles beyond the served and previous ones are pruned, oldest first, past
    # this size (today's bundles are a few MB).
    model_bundle_budget_mb: float = Field(default=200.0, gt=0)
    # A bundle is refused when one model call on a smoke shopper takes longer than this.
    model_smoke_budget_ms: float = Field(default=250.0, gt=0)
    # The models' ONNX graphs run off the event loop on this many threads, each request
    # within this deadline (waiting for a thread included); past it, store favourites or a
    # clear 503. A safety net against a pathological model, not the latency target (a graph
    # runs in well under a ms): set too tight, a busy box's cold first call would be
    # refused. One thread per process is enough: a graph runs without the GIL, and more
    # threads only add GIL contention (serving benchmark, 2 workers, when whole model calls
    # ran on them: recommendations p99 31 ms with 2 threads, 19 ms with 1).
    model_threads: int = Field(default=1, ge=1, le=32)
    model_deadline_ms: float = Field(default=500.0, gt=0)
    # The model threads' Linux niceness (0 = as the threads serving HTTP; 19 = only when
    # nothing else wants the CPU). 0: personal answers are the product, and a niced model
    # thread starves on a busy box (serving benchmark with other work on the machine: 81
    # requests past the deadline at 10, 21 at 0); /healthz stays free regardless, as model
    # calls run off the event loop and ONNX Runtime releases the GIL.
    model_niceness: int = Field(default=0, ge=0, le=19)
    # With a cloud link, release jobs (AWS IoT Jobs) are taken when notified; this is how
    # often the store asks anyway (a missed notification, or back from offline).
    model_update_poll_s: float = Field(default=60.0, gt=0)
    # Store-wide answers (trending) move over minutes; every display polling them should not
    # re-aggregate the tills each time.
    trending_cache_s: float = Field(default=30.0, ge=0)
    # A shopper's model answers (ranking, purchase timing) are reused until they buy again,
    # the models change, or this many seconds pass (edge_agent/api/shopper_memo.py). 0: never.
    shopper_memo_s: float = Field(default=300.0, ge=0)
    # Request bodies are refused (413) past this size while being read, before JSON and
    # before the key check. The largest real body, a route of a few hundred items, is ~20 KB.
    http_max_body_bytes: int = Field(default=256 * 1024, ge=1024, le=64 * 2**20)
    # ... and must arrive whole within this many seconds of its first read (408 past it): a
    # body sent a byte at a time would otherwise hold its connection and handler for ever.
    http_body_timeout_s: float = Field(default=30.0, gt=0, le=600)
    # Connections bounded before any request is parsed (edge_agent/api/connections.py): at
    # most this many held (lowered to keep 256 descriptors of the file limit free), each
    # must send a whole request head within http_header_timeout_s of opening or of its last
    # response, of at most http_max_header_bytes; idle keep-alive ends after
    # http_keepalive_s. A store has tens of devices; a kiosk's request head is under 1 KB.
    http_max_connections: int = Field(default=1000, ge=32, le=100_000)
    http_header_timeout_s: float = Field(default=10.0, gt=0, le=300)
    http_max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    http_keepalive_s: int = Field(default=5, ge=1, le=300)
    # The kernel's queue of connections not yet accepted.
    http_backlog: int = Field(default=128, ge=1, le=65535)
    # EDGE_API_KEYS='[{"name": "kiosk-1", "role": "kiosk", "key": "..."}]' (JSON).
    api_keys: list[ApiKey] = Field(default_factory=list)

    # Ingestion. A cheap sensor can send anything; 64 KiB is far above the largest real
    # message (a 1,000-line POS basket is ~100 KiB only with absurd ids) and bounds memory.
    max_payload_bytes: int = Field(default=64 * 1024, ge=1024)
    # A dead letter keeps this much of the raw payload: enough to see what a device sent and
    # to replay a real sale, while a flood of junk costs at most dead_letter_max_rows of it.
    dead_letter_max_raw_bytes: int = Field(default=16 * 1024, ge=256)
    dead_letter_max_rows: int = Field(default=10_000, ge=100)
    # Event timestamps a store accepts: a device whose clock reset says 1970, and a reading
    # from the far future would stay a shelf's "latest" until that date. Late events (a till
    # back online, a history back-fill, a dataset replay) are fine down to earliest_event_ts.
    earliest_event_ts: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_clock_ahead_s: float = Field(default=300.0, ge=0, le=86_400)
    # Retention (edge_agent/storage/retention.py): the raw event log (the uplink's outbox
    # and the duplicate check's window: a redelivery comes within seconds) for a day, sensor
    # history for a week, kiosk interactions for a month, sales for a year (the models learn
    # yearly rhythms). docs/storage.md has the sizes this gives at a busy store's rates.
    retention_events_days: float = Field(default=1.0, gt=0)
    retention_sensor_days: float = Field(default=7.0, gt=0)
    retention_interactions_days: float = Field(default=30.0, gt=0)
    retention_sales_days: float = Field(default=366.0, gt=0)
    retention_dead_letters_days: float = Field(default=14.0, gt=0)
    purge_interval_s: float = Field(default=60.0, gt=0)
    # The cloud link (docs/cloud-link.md): the directory `cloud-sync fleet provision` wrote
    # (link.json, certificate, private key, CA, the chain's pseudonym key). None: the store
    # runs as an island, and retention does not wait for an uplink.
    cloud_credentials: Path | None = None
    # With a link, events the cloud has not acknowledged outlive retention_events_days. An
    # oldest unsent event older than this raises the uplink alarm (metric, /readyz degraded,
    # log): at a busy store's ~1 GB of event log a day, days before a sane disk fills.
    uplink_backlog_alarm_hours: float = Field(default=12.0, gt=0)
    # What gives way when the link stays down (docs/cloud-link.md). None: nothing; unsent
    # events are kept until the disk's own alarm and then its limit stop ingestion (sensors
    # and tills keep their messages in the broker meanwhile). A number of days: unsent
    # events older than that are deleted, counted (edge_uplink_dropped_events) and logged.
    uplink_max_unsent_days: float | None = Field(default=None, gt=0)
    # Events IoT Core took but the lake has not confirmed writing after this long are sent
    # again (each further time waits twice as long, up to an hour): a PUBACK says only that
    # the broker took a batch, not that a lake worker wrote it (docs/cloud-link.md).
    uplink_lake_confirm_timeout_s: float = Field(default=120.0, gt=0)
    # Free space on the database's filesystem below which the agent raises the "storage
    # low" alarm (metric, /readyz, log): days of ingestion at a busy store's rates.
    storage_alarm_free_mb: int = Field(default=2048, ge=0)
    # One SQLite transaction per batch: bigger batches amortize the commit's fsync and WAL
    # writes. A batch goes when full or when its oldest message has waited batch_max_wait_ms;
    # what arrives during a commit goes with the next. 50 ms is far below what a kiosk or
    # display shows, and at 1,000 events/s the writer's CPU is ~15% lower than at 20 ms.
    batch_max_events: int = Field(default=1000, ge=1, le=100_000)
    batch_max_wait_ms: int = Field(default=50, ge=0, le=10_000)
    # MQTT 5 Receive Maximum: how many unacknowledged QoS 1 messages the broker may have in
    # flight to us. Acks wait for the commit, so this must cover a whole batch or the
    # broker stalls waiting for acks we only send after the batch fills.
    mqtt_receive_maximum: int = Field(default=2000, ge=1, le=65535)
    # MQTT 5 by default (Receive Maximum, session expiry); 3.1.1 for brokers that lack 5,
    # such as the embedded amqtt broker (there the broker's own in-flight limit applies).
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_keepalive_s: int = Field(default=30, ge=5)
    # The broker keeps our subscription and unacked messages this long while we are down.
    mqtt_session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    # FULL survives power loss (the WAL is fsynced at each commit); NORMAL only process crashes.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("store_id")
    @classmethod
    def _store_id_safe(cls, value: str) -> str:
        if not STORE_ID_PATTERN.match(value):
            raise ValueError("must be 1-64 letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _dead_letter_fits_payload(self) -> Settings:
        if self.dead_letter_max_raw_bytes > self.max_payload_bytes:
            raise ValueError("dead_letter_max_raw_bytes must not exceed max_payload_bytes")
        return self

    @field_validator("broker")
    @classmethod
    def _broker_url_valid(cls, value: str | None) -> str | None:
        if value:
            parse_broker_url(value)
        return value or None

    @field_validator("layout")
    @classmethod
    def _layout_loads(cls, value: str) -> str:
        from store_layouts import LayoutError, load_layout

        try:
            load_layout(value)
        except (LayoutError, OSError) as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def broker_address(self) -> BrokerAddress | None:
        return parse_broker_url(self.broker) if self.broker else None

    @property
    def bundle_folder(self) -> Path:
        return self.model_bundle_dir or Path(self.db).parent / "bundles"

    @property
    def mqtt_client_id(self) -> str:
        # Stable per store: the broker keeps the persistent session under this id.
        return f"edge-agent-{self.store_id}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_path = _CONFIG_FILE_OVERRIDE.get("path")
        if config_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_path))
        return tuple(sources)


# Set by load_settings for the duration of one construction (pydantic-settings builds the
# source list from the class, so the file path has to reach it from outside).
_CONFIG_FILE_OVERRIDE: dict[str, Path | None] = {}


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from flags (`overrides`, None values ignored), env, config file, defaults."""
    import os

    path = config_file or os.environ.get(CONFIG_ENV_VAR)
    config_path = Path(path) if path else None
    if config_path is not None and not config_path.is_file():
        raise SettingsError(f"config_file: {config_path} does not exist")
    given = {k: v for k, v in overrides.items() if v is not None}
    _CONFIG_FILE_OVERRIDE["path"] = config_path
    try:
        return Settings(**given)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None
    except ValueError as exc:  # e.g. malformed TOML
        raise SettingsError(f"config_file: {exc}") from None
    finally:
        _CONFIG_FILE_OVERRIDE.pop("path", None)


# In a worker's settings JSON: the names of the settings given explicitly.
_GIVEN_KEY = "__given__"


def settings_to_json(settings: Settings) -> str:
    """Every value, secrets in clear: only for handing to the agent's own worker processes."""

    def plain(value: object) -> object:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(f"cannot pass {type(value).__name__} to a worker")

    # Which values were given (flag, env, file) travels too: a worker decides as its agent
    # process did where that matters (an imported layout yields to a configured one).
    return json.dumps({**settings.model_dump(), _GIVEN_KEY: sorted(settings.model_fields_set)},
                      default=plain)


def settings_from_json(text: str) -> Settings:
    """The settings a worker was handed by `settings_to_json` (they override env and file)."""
    values = json.loads(text)
    given = values.pop(_GIVEN_KEY, None)
    settings = Settings(**values)
    if given is not None:
        object.__setattr__(settings, "__pydantic_fields_set__", set(given))
    return settings


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False):
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        if err["type"] == "extra_forbidden":
            problems.append(f"{name}: unknown setting")
        else:
            problems.append(f"{name} ({ENV_PREFIX}{name.upper()}): {err['msg']}")
    return "invalid settings: " + "; ".join(problems)
