"""The dcc command line: catalogue, send and audit against a live hub on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from actors.live import HubSettings, LiveHub
from cli.app import app
from tests.live_support import make_fleet, supplier_meter

pytestmark = pytest.mark.timeout(120)
runner = CliRunner()


def test_catalogue_json_lists_all_129_services_with_their_roles() -> None:
    result = runner.invoke(app, ["catalogue", "--json"])
    assert result.exit_code == 0
    services = {s["code"]: s for s in json.loads(result.output)}
    assert len(services) == 129
    assert services["2.2"]["roles"] == ["GS", "IS"]
    assert services["7.5"]["in_scope"] is False
    assert services["4.1.1"]["executes"] is True


def test_send_prints_the_acknowledgement_and_the_response_and_audit_shows_them(
    tmp_path: Path,
) -> None:
    fleet_dir = tmp_path / "fleet"
    fleet = make_fleet(fleet_dir, sites=30, seed=4)
    user, meter = supplier_meter(fleet)
    settings = HubSettings(
        fleet_dir=fleet_dir,
        data_dir=tmp_path / "hub",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.1,
    )
    with LiveHub(settings, fleet) as hub:
        sent = runner.invoke(
            app,
            [
                "send",
                "--fleet",
                str(fleet_dir),
                "--endpoint",
                hub.endpoint,
                "--user",
                user,
                "--role",
                "IS",
                "--service",
                "4.1.1",
                "--device",
                meter.device_id,
            ],
        )
        assert sent.exit_code == 0, sent.output
        assert "Acknowledgement" in sent.output
        assert "ServiceResponse" in sent.output
        refused = runner.invoke(
            app,
            [
                "send",
                "--fleet",
                str(fleet_dir),
                "--endpoint",
                hub.endpoint,
                "--user",
                user,
                "--role",
                "IS",
                "--service",
                "7.5",
                "--device",
                meter.device_id,
            ],
        )
        assert refused.exit_code == 1
        assert "H5" in refused.output
    audited = runner.invoke(
        app, ["audit", "--data", str(tmp_path / "hub"), "--user", user, "--json", "--limit", "1000"]
    )
    assert audited.exit_code == 0
    records = [json.loads(line) for line in audited.output.splitlines()]
    assert any(r["kind"] == "refusal" and r["code"] == "H5" for r in records)
    assert any(r["kind"] == "acknowledgement" and r["code"] == "I99" for r in records)


def test_audit_on_a_missing_store_says_so_and_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["audit", "--data", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "no hub store" in result.output
