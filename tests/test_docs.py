"""Docs that cannot drift: every HTTP endpoint and CLI command appears in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_agent.api.app import create_app
from edge_agent.cli import build_parser
from edge_agent.settings import load_settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _endpoints() -> list[str]:
    app = create_app(load_settings(broker="mqtt://127.0.0.1:1"))
    return sorted(f"{method} {path}" for path, item in app.openapi()["paths"].items()
                  for method in (m.upper() for m in item))


@pytest.mark.parametrize("endpoint", _endpoints())
def test_every_endpoint_is_in_the_readme(endpoint: str) -> None:
    method, path = endpoint.split(" ", 1)
    assert re.search(rf"`{method} {re.escape(path)}[`?]", README), f"{endpoint} not in README"


def test_every_cli_command_is_in_the_readme() -> None:
    commands = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in commands:
        assert f"edge-agent {name}" in README, f"`edge-agent {name}` not in README"


def test_the_documented_service_settings_load() -> None:
    # docs/operations/agent.toml is what an operator copies to /etc: it must start an agent.
    from pathlib import Path

    from edge_agent.settings import load_settings

    docs = Path(__file__).resolve().parents[1] / "docs" / "operations"
    settings = load_settings(config_file=docs / "agent.toml")
    assert settings.store_id == "store-042" and settings.http_workers == 2
    unit = (docs / "edge-agent.service").read_text()
    assert "EDGE_CONFIG=/etc/edge-agent/agent.toml" in unit
    assert "ExecStart=/opt/edge-agent/venv/bin/edge-agent run" in unit
    assert "LimitNOFILE=" in unit and "Restart=on-failure" in unit


def test_the_api_docs_page_needs_no_internet() -> None:
    # A store's network may be offline: /docs must not load Swagger UI from a CDN.
    import re

    from fastapi.testclient import TestClient

    from edge_agent.api.app import create_app
    from edge_agent.settings import load_settings

    client = TestClient(create_app(load_settings(broker="mqtt://127.0.0.1:1")))
    page = client.get("/docs")
    assert page.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert assets and not [url for url in assets if "://" in url or url.startswith("//")]
    for url in assets:
        assert client.get(url).status_code == 200, url
    assert client.get("/openapi.json").json()["info"]["title"]


def test_every_cloud_sync_command_is_documented() -> None:
    import argparse

    from cloud_sync.cli import build_parser as cloud_parser

    docs = README + "".join((Path(__file__).resolve().parents[1] / "docs" / name).read_text()
                            for name in ("cloud-link.md", "releases.md", "retraining.md"))

    def choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        if parser._subparsers is None:  # a command of its own (`cloud-sync retrain`)
            return {}
        return parser._subparsers._group_actions[0].choices  # type: ignore[return-value]

    for group, group_parser in choices(cloud_parser()).items():
        assert f"cloud-sync {group}" in docs, f"`cloud-sync {group}`"
        for command in choices(group_parser):
            assert f"cloud-sync {group} {command}" in docs, f"`cloud-sync {group} {command}`"
