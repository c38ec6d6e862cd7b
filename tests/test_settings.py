"""Settings: flags over env over config file over defaults; a bad value names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli import main
from edge_agent.settings import SettingsError, load_settings


def test_precedence_flags_then_env_then_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('store_id = "from-file"\nport = 9000\nbatch_max_events = 50\n')
    monkeypatch.setenv("EDGE_PORT", "9100")
    settings = load_settings(config_file=config, store_id="from-flag")
    assert (settings.store_id, settings.port, settings.batch_max_events) == ("from-flag", 9100, 50)


def test_config_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('broker = "mqtts://broker.store.local"\n')
    monkeypatch.setenv("EDGE_CONFIG", str(config))
    address = load_settings().broker_address
    assert address is not None and (address.host, address.port, address.tls) == (
        "broker.store.local", 8883, True)


@pytest.mark.parametrize(("overrides", "named"), [
    ({"store_id": "a/b"}, "store_id"),
    ({"broker": "http://x:1"}, "broker"),
    ({"port": 70000}, "port"),
    ({"sqlite_synchronous": "OFF"}, "sqlite_synchronous"),
])
def test_bad_value_fails_naming_the_setting(overrides: dict, named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(**overrides)


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_BATCH_MAX_EVENTS", "lots")
    with pytest.raises(SettingsError, match="EDGE_BATCH_MAX_EVENTS"):
        load_settings()


def test_unknown_key_in_config_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "edge.toml"
    config.write_text('stor_id = "typo"\n')
    with pytest.raises(SettingsError, match="stor_id: unknown setting"):
        load_settings(config_file=config)


def test_cli_reports_a_bad_setting_and_exits_2(capsys: pytest.CaptureFixture[str],
                                               tmp_path: Path) -> None:
    code = main(["run", "--store-id", "no spaces allowed", "--broker", "mqtt://127.0.0.1:1",
                 "--db", str(tmp_path / "x.db")])
    assert code == 2
    assert "store_id" in capsys.readouterr().err


def test_run_without_a_broker_says_so(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGE_BROKER", raising=False)
    assert main(["run", "--db", str(tmp_path / "x.db")]) == 2
    assert "broker" in capsys.readouterr().err
