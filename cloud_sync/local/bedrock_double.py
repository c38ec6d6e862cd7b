"""A local stand-in for Amazon Bedrock Runtime's Converse API: a real HTTP server that
boto3 reaches through `endpoint_url`, so a test exercises signing, serialization, error
parsing and botocore's retries exactly as production does.

    POST /model/{modelId}/converse      (rest-json, as botocore's bedrock-runtime model says)

Behaviour is scripted per call (`script`) or per shopper (`script_shopper`, found in the
request's summary), and otherwise `default`:

    valid        a forced-tool answer built from the summary
    malformed    a tool answer that breaks the schema (a confidence of 1.7, no churn risk)
    no_tool      a text answer, no tool use
    throttled    429 ThrottlingException          (botocore's standard mode retries it)
    not_ready    429 ModelNotReadyException       (retried too: modelled as retryable)
    timeout      408 ModelTimeoutException        (not retried by botocore)
    failing      424 ModelErrorException          (not retried by botocore)
    unavailable  503 ServiceUnavailableException
    slow         waits `slow_s` seconds, then answers valid

Errors carry the AWS shape: `x-amzn-ErrorType` header and a `{"message": ...}` body. Each
answer has a realistic `usage`: tokens are UTF-8 bytes / 4, the shared prefix (tools and
system) written to the cache on its first call and read from it afterwards, when it is at
least the model's minimum cacheable length.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote

from cloud_sync.local.bedrock_answers import (
    ERROR_TYPE_SUFFIX,
    ERRORS,
    malformed_answer,
    summary_in,
    tokens,
    valid_answer,
)

if TYPE_CHECKING:
    from cloud_sync.local.bedrock_batch_double import BatchJobs

LOCALHOST = "127.0.0.1"
SHUTDOWN_POLL_S = 0.02
# The shortest prefix Bedrock caches, per model (Anthropic's documented floors): shorter
# ones are billed as plain input, the cache point silently ignored.
CACHE_MIN_TOKENS = {"claude-haiku-4-5": 4_096, "claude-opus-4-5": 4_096}
DEFAULT_CACHE_MIN_TOKENS = 1_024
BEHAVIOURS = frozenset({"valid", "malformed", "no_tool", "slow", *ERRORS})


@dataclass(frozen=True)
class Received:
    model_id: str
    shopper_id: str | None
    behaviour: str
    headers: dict[str, str]
    body: bytes
    usage: dict[str, int] | None = None  # of a 200 answer, as sent


class BedrockDouble:
    def __init__(self, *, default: str = "valid", slow_s: float = 2.0,
                 s3_endpoint_url: str | None = None, batch_step_s: float = 0.05) -> None:
        """`s3_endpoint_url` (a moto server) turns on the batch job API (batch_double)."""
        self.default, self.slow_s = default, slow_s
        self.batch: BatchJobs | None = None
        if s3_endpoint_url is not None:
            from cloud_sync.local.bedrock_batch_double import BatchJobs

            self.batch = BatchJobs(self, s3_endpoint_url, step_s=batch_step_s)
        self.received: list[Received] = []
        self._calls: deque[str] = deque()
        self._shoppers: dict[str, deque[str]] = defaultdict(deque)
        self._cached_prefixes: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ scripting
    def script(self, *behaviours: str) -> None:
        """The next calls' behaviours, in order (after any shopper's own script)."""
        with self._lock:
            self._calls.extend(_checked(behaviours))

    def script_shopper(self, shopper_id: str, *behaviours: str) -> None:
        with self._lock:
            self._shoppers[shopper_id].extend(_checked(behaviours))

    def calls(self, shopper_id: str | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.received
                       if shopper_id is None or r.shopper_id == shopper_id)

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Bedrock double is not running")
        return f"http://{LOCALHOST}:{self._server.server_address[1]}"

    def start(self) -> Self:
        double = self

        class Handler(_Handler):
            owner = double

        self._server = ThreadingHTTPServer((LOCALHOST, 0), Handler)
        # A short poll: `stop` (shutdown) waits for the loop's next look.
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        args=(SHUTDOWN_POLL_S,), name="bedrock-double",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # a slow answer in progress gives up its wait
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ answering
    def next_behaviour(self, shopper_id: str | None) -> str:
        with self._lock:
            own = self._shoppers.get(shopper_id or "")
            if own:
                return own.popleft()
            return self._calls.popleft() if self._calls else self.default

    def answer(self, model_id: str, headers: dict[str, str], body: bytes
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        request = json.loads(body)
        summary = summary_in(request)
        shopper = summary.get("shopper_id") if isinstance(summary, dict) else None
        behaviour = self.next_behaviour(shopper)
        status, extra, payload = self._reply(behaviour, request, summary, model_id)
        with self._lock:
            self.received.append(Received(model_id, shopper, behaviour, headers, body,
                                          payload.get("usage")))
        return status, extra, payload

    def _reply(self, behaviour: str, request: dict[str, Any], summary: Any, model_id: str
               ) -> tuple[int, dict[str, str], dict[str, Any]]:
        if behaviour in ERRORS:
            status, code, message = ERRORS[behaviour]
            return status, {"x-amzn-ErrorType": code + ERROR_TYPE_SUFFIX}, {"message": message}
        if behaviour == "slow":
            self._stop.wait(self.slow_s)
        started = time.perf_counter()
        tool = request["toolConfig"]["tools"][0]["toolSpec"]["name"]
        if behaviour == "no_tool":
            content: list[dict[str, Any]] = [{"text": "I think this shopper likes milk."}]
            stop, produced = "end_turn", content[0]["text"]
        else:
            answer = malformed_answer() if behaviour == "malformed" else valid_answer(summary)
            content = [{"toolUse": {"toolUseId": "tooluse_" + uuid.uuid4().hex[:20],
                                    "name": tool, "input": answer}}]
            stop, produced = "tool_use", json.dumps(answer)
        usage = self._usage(request, produced, model_id)
        return 200, {}, {"output": {"message": {"role": "assistant", "content": content}},
                         "stopReason": stop, "usage": usage,
                         "metrics": {"latencyMs": int(1000 * (time.perf_counter() - started))}}

    def _usage(self, request: dict[str, Any], produced: str, model_id: str
               ) -> dict[str, int]:
        prefix = json.dumps([request.get("toolConfig"), request.get("system")], sort_keys=True)
        shared = tokens(prefix)
        fresh = tokens(json.dumps(request.get("messages")))
        floor = next((n for name, n in CACHE_MIN_TOKENS.items() if name in model_id),
                     DEFAULT_CACHE_MIN_TOKENS)
        cached = shared >= floor and any(
            "cachePoint" in block for block in request.get("system", []))
        with self._lock:
            first = prefix not in self._cached_prefixes
            if cached:
                self._cached_prefixes.add(prefix)
        write = shared if cached and first else 0
        read = shared if cached and not first else 0
        fresh += 0 if cached else shared
        out = tokens(produced)
        return {"inputTokens": fresh, "outputTokens": out, "totalTokens": fresh + out + read
                + write, "cacheReadInputTokens": read, "cacheWriteInputTokens": write}


class _Handler(BaseHTTPRequestHandler):
    owner: BedrockDouble
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoint

    def do_GET(self) -> None:
        self._batch("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts[0].startswith("model-invocation-job"):
            self._batch("POST", body)
            return
        if len(parts) != 3 or parts[0] != "model" or parts[2] != "converse":
            self._send(404, {"x-amzn-ErrorType": "UnknownOperationException"},
                       {"message": f"no operation at {self.path}"})
            return
        if not self._signed():
            return
        try:
            status, headers, payload = self.owner.answer(
                unquote(parts[1]), {k.lower(): v for k, v in self.headers.items()}, body)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            status, payload = 400, {"message": f"malformed request: {exc}"}
            headers = {"x-amzn-ErrorType": "ValidationException" + ERROR_TYPE_SUFFIX}
        self._send(status, headers, payload)

    def _signed(self) -> bool:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("AWS4-HMAC-SHA256 Credential=") and "/bedrock/aws4_request" in auth:
            return True
        self._send(403, {"x-amzn-ErrorType": "AccessDeniedException" + ERROR_TYPE_SUFFIX},
                   {"message": "missing or unsigned request (SigV4, service bedrock)"})
        return False

    def _batch(self, method: str, body: bytes) -> None:
        """The control plane's batch job API (bedrock_batch_double), when it is on."""
        if self.owner.batch is None:
            self._send(404, {"x-amzn-ErrorType": "UnknownOperationException"},
                       {"message": "batch jobs need the double's s3_endpoint_url"})
        elif self._signed():
            # The credential scope is key/date/region/service/aws4_request.
            region = self.headers["Authorization"].split("Credential=")[1].split("/")[2]
            self._send(*self.owner.batch.handle(method, self.path, body, region))

    def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # The client may have given up (its read timeout): what a slow answer is for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read `received`, not stderr


def _checked(behaviours: tuple[str, ...]) -> tuple[str, ...]:
    unknown = set(behaviours) - BEHAVIOURS
    if unknown:
        raise ValueError(f"unknown behaviour(s) {sorted(unknown)}; known: {sorted(BEHAVIOURS)}")
    return behaviours
