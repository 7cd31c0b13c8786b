"""The dcc command line's machine-readable output, driven in a subprocess as a tool would:
``--json`` gives one document for answers and reports and JSON lines for streams, never
wrapped, with times in ISO 8601 UTC; time options take ISO 8601 or epoch seconds; the audit
shows the newest records first unless asked otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from tests.live_support import make_fleet, supplier_meter
from tests.test_cli_errors import dcc

pytestmark = pytest.mark.timeout(120)


def _is_iso_utc(text: str) -> bool:
    return text.endswith("Z") and datetime.fromisoformat(text).utcoffset() is not None


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, str, str, str]]:
    """A running hub on loopback: (fleet dir, data dir, endpoint, user, meter device id)."""
    root = tmp_path_factory.mktemp("cli-json")
    fleet = make_fleet(root / "fleet", sites=30, seed=4)
    user, meter = supplier_meter(fleet)
    settings = HubSettings(
        fleet_dir=root / "fleet",
        data_dir=root / "hub",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.1,
    )
    with LiveHub(settings, fleet) as hub:
        yield root / "fleet", root / "hub", hub.endpoint, user, meter.device_id


def _send(live: tuple[Path, Path, str, str, str], *extra: str) -> dict[str, object]:
    fleet, _, endpoint, user, meter = live
    result = dcc(
        "send",
        "--json",
        "--fleet",
        str(fleet),
        "--endpoint",
        endpoint,
        "--user",
        user,
        "--role",
        "IS",
        "--device",
        meter,
        *extra,
    )
    assert result.returncode in (0, 1), result.stderr
    doc: dict[str, object] = json.loads(result.stdout)  # one document, nothing else
    return doc


def test_send_json_is_one_document_with_the_answer_and_the_response(
    live: tuple[Path, Path, str, str, str],
) -> None:
    doc = _send(live, "--service", "4.1.1")
    answer, response = doc["answer"], doc["response"]
    assert isinstance(answer, dict)
    assert isinstance(response, dict)
    assert answer["type"] == "acknowledgement"
    assert answer["code"] == "I99"
    assert response["type"] == "service_response"
    assert response["request_id"] == answer["request_id"]
    assert _is_iso_utc(str(response["responded_at"]))


def test_send_json_of_a_refusal_has_no_response_and_status_1(
    live: tuple[Path, Path, str, str, str],
) -> None:
    doc = _send(live, "--service", "7.5")
    answer = doc["answer"]
    assert isinstance(answer, dict)
    assert answer["type"] == "refusal"
    assert answer["code"] == "H5"
    assert doc["response"] is None


def test_send_takes_an_iso_execution_time_as_well_as_epoch_seconds(
    live: tuple[Path, Path, str, str, str],
) -> None:
    for when in ("2099-01-01T00:00:00Z", "4070908800"):
        doc = _send(live, "--service", "4.1.1", "--execute-at", when, "--wait", "0")
        answer = doc["answer"]
        assert isinstance(answer, dict)
        assert answer["type"] in ("acknowledgement", "refusal"), answer
        assert answer["code"] != "E1", answer  # a well-formed request, whatever its fate


def test_audit_json_lines_are_newest_first_unless_oldest_first_is_asked(
    live: tuple[Path, Path, str, str, str],
) -> None:
    _send(live, "--service", "4.1.1")
    _, data, _, user, _ = live
    newest = dcc("audit", "--json", "--data", str(data), "--user", user, "--limit", "3")
    oldest = dcc(
        "audit", "--json", "--data", str(data), "--user", user, "--limit", "3", "--oldest-first"
    )
    everything = dcc("audit", "--json", "--data", str(data), "--user", user, "--limit", "100000")
    assert newest.returncode == oldest.returncode == everything.returncode == 0, newest.stderr
    new = [json.loads(line) for line in newest.stdout.splitlines()]
    old = [json.loads(line) for line in oldest.stdout.splitlines()]
    every = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(new) == len(old) == 3
    assert len(every) > 3
    assert new == every[:3]
    assert old == every[::-1][:3]
    assert all(_is_iso_utc(r["at"]) for r in every)
    assert max(len(line) for line in everything.stdout.splitlines()) > 80  # never wrapped
    assert [r["at"] for r in every] == sorted((r["at"] for r in every), reverse=True)


def test_audit_since_takes_iso_and_epoch_seconds_alike(
    live: tuple[Path, Path, str, str, str],
) -> None:
    data = live[1]
    iso = dcc("audit", "--json", "--data", str(data), "--since", "2000-01-01T00:00:00Z")
    epoch = dcc("audit", "--json", "--data", str(data), "--since", "946684800")
    future = dcc("audit", "--json", "--data", str(data), "--since", "2099-01-01")
    assert iso.returncode == epoch.returncode == future.returncode == 0
    assert iso.stdout == epoch.stdout != ""
    assert future.stdout == ""


def test_report_sla_json_keeps_the_service_and_its_target(
    live: tuple[Path, Path, str, str, str],
) -> None:
    _send(live, "--service", "4.1.1")
    _, data, _, _, _ = live
    result = dcc("report", "sla", "--json", "--data", str(data))
    assert result.returncode in (0, 3), result.stderr
    doc = json.loads(result.stdout)
    row = next(r for r in doc["rows"] if r["service"] == "4.1.1")
    assert row["target_s"] > 0
    assert row["count"] >= 1
    assert {"name", "p50_s", "p95_s", "p99_s", "within_target", "breached"} <= set(row)
    assert doc["service_level_minimum"] <= doc["service_level_target"]


def test_listen_json_prints_one_object_a_line_and_its_count_on_stderr(
    live: tuple[Path, Path, str, str, str],
) -> None:
    fleet, _, endpoint, user, _ = live
    result = dcc(
        "listen",
        "--json",
        "--fleet",
        str(fleet),
        "--endpoint",
        endpoint,
        "--user",
        user,
        "--timeout",
        "1",
    )
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert messages[0]["type"] == "welcome"
    assert _is_iso_utc(messages[0]["server_time"])
    assert "deliveries received" in result.stderr


def test_catalogue_json_is_one_array_as_its_help_says() -> None:
    result = dcc("catalogue", "--json", "--role", "GS")
    assert result.returncode == 0
    services = json.loads(result.stdout)
    assert services
    assert all("GS" in s["roles"] for s in services)
    assert "one object per service" in dcc("catalogue", "--help").stdout
