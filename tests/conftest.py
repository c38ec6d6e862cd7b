"""Shared fixtures: real brokers on free local ports. Extend this file; don't replace it.

A test that needs a real component (Mosquitto now, Chromium later) fails under CI=true when
the component is missing (CI must install it), and is skipped with the reason elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_agent.broker import MosquittoBroker, find_mosquitto
from edge_agent.embedded_broker import EmbeddedBroker

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_component(name: str, available: bool, install_hint: str) -> None:
    if available:
        return
    message = f"{name} is not installed ({install_hint})"
    if IN_CI:
        pytest.fail(f"{message}: CI must install it", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def mosquitto_broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A real Mosquitto on a free port, with persistence so restarts keep sessions. For tests
    of restarts and redelivery, which the embedded broker does not provide."""
    yield from _mosquitto(tmp_path)


def _mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    require_component("mosquitto", find_mosquitto() is not None, "apt-get install mosquitto")
    broker = MosquittoBroker(config_dir=tmp_path / "mosquitto")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[MosquittoBroker | EmbeddedBroker]:
    """Mosquitto when installed; elsewhere (never in CI) the embedded amqtt broker, whose
    clients speak MQTT 3.1.1 (`broker.mqtt_protocol`)."""
    if find_mosquitto() is None and not IN_CI:
        with EmbeddedBroker() as embedded:
            yield embedded
        return
    yield from _mosquitto(tmp_path)


CHROMIUM = "/usr/bin/chromium"
# Flags for a root user on a machine with no outside network: without the background
# networking ones, Chromium keeps trying (and failing) to reach Google's services.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright."""
    require_component("chromium", os.access(CHROMIUM, os.X_OK), "apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: object, tmp_path: Path) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(scope="session")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Two signed model bundles (v1, v2) trained on generated data, and their keys."""
    from tests.model_bundles import make_bundles

    return make_bundles(tmp_path_factory.mktemp("bundles"))
