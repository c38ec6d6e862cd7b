"""One error shape everywhere: `{"error": {"code", "message", ...}}`, whatever refused the
request (the key check, the role check, validation, a body that is not JSON, an unknown
path), with a message a person can act on."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import KEYS, Store

FEEDBACK = {"device_id": "kiosk-1", "action": "click", "product_id": "P000123"}


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]
    return error


@pytest.mark.parametrize(("headers", "reason"), [
    ({}, "missing_key"),
    ({"X-API-Key": "not-a-key-this-store-issued"}, "unknown_key"),
])
def test_401_has_the_error_shape(store: Store, headers: dict[str, str], reason: str) -> None:
    response = store.client.get("/v1/trending", headers=headers)
    error = _error(response, 401, "unauthorized")
    assert error["reason"] == reason
    assert response.headers["WWW-Authenticate"] == "X-API-Key"


def test_a_key_cut_short_is_explained_in_plain_words(store: Store) -> None:
    short = KEYS["kiosk"][:5]
    error = _error(store.client.get("/v1/trending", headers={"X-API-Key": short}), 401,
                   "unauthorized")
    assert error["reason"] == "key_too_short"
    assert "5 characters long" in error["message"] and "at least 16" in error["message"]


def test_403_has_the_error_shape(store: Store) -> None:
    error = _error(store.get("/v1/staff/restock-alerts", role="kiosk"), 403, "forbidden")
    assert error["message"] == "a kiosk key may not use this endpoint"


def test_malformed_json_is_reported_as_such(store: Store) -> None:
    response = store.client.post("/v1/feedback", content=b'{"device_id": "kiosk-1",, }',
                                 headers={"X-API-Key": KEYS["kiosk"],
                                          "Content-Type": "application/json"})
    error = _error(response, 400, "malformed_json")
    assert error["message"].startswith("the request body is not valid JSON")
    assert "line 1, column 25" in error["message"] and error["position"] == 24
    assert "fields" not in error  # not a field named "body.24"


def test_an_invalid_field_still_names_the_field(store: Store) -> None:
    response = store.post("/v1/feedback", {**FEEDBACK, "action": "stare"})
    error = _error(response, 422, "invalid_request")
    assert "body.action" in error["fields"]


def test_unknown_paths_and_methods_have_the_error_shape(store: Store) -> None:
    _error(store.get("/v1/no-such-thing"), 404, "not_found")
    _error(store.client.delete("/v1/trending", headers={"X-API-Key": KEYS["kiosk"]}), 405,
           "method_not_allowed")
