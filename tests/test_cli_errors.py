"""The dcc command line's error convention, driven as a user drives it (a subprocess): every
bad input gets one or two lines on stderr, nothing on stdout, no traceback, and its status."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.live import HubSettings, LiveHub
from tests.live_support import free_port, make_fleet, supplier_meter

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[1]


def dcc(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cli ARGS`` as a user would, capturing both streams."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("DCC_")}
    full_env["PYTHONPATH"] = str(ROOT)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env=full_env,
        timeout=90,
        check=False,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], status: int, *words: str) -> None:
    """One or two lines on stderr naming ``words``, nothing on stdout, no traceback."""
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 2, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


def _read_request(
    fleet_dir: Path, endpoint: str | None = None, *extra: str, user: str = "u-supa"
) -> subprocess.CompletedProcess[str]:
    """``dcc send`` of a 4.1.1 as ``user`` (to ``endpoint``, giving up after half a second)."""
    where = ["--endpoint", endpoint, "--connect-timeout", "0.5"] if endpoint else []
    return dcc(
        "send",
        "--fleet",
        str(fleet_dir),
        *where,
        "--user",
        user,
        "--role",
        "IS",
        "--service",
        "4.1.1",
        *extra,
    )


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli-errors") / "fleet"
    make_fleet(directory, sites=30, seed=4)
    return directory


def test_an_unknown_role_is_refused_with_the_valid_roles_listed() -> None:
    result = dcc("send", "--user", "u-supa", "--role", "XX", "--service", "4.1.1")
    assert_user_error(result, 2, "--role", "'XX'", "'IS'", "'RSA'", "dcc send --help")


def test_catalogue_for_an_unknown_role_is_refused_not_an_empty_table() -> None:
    assert_user_error(dcc("catalogue", "--role", "XX"), 2, "--role", "'GS'")


def test_an_endpoint_without_tcp_is_refused_with_the_form_to_write() -> None:
    result = dcc(
        "send", "--user", "u", "--role", "IS", "--service", "4.1.1", "--endpoint", "localhost:25570"
    )
    assert_user_error(result, 2, "--endpoint", "tcp://localhost:25570")


def test_a_probability_above_one_is_refused() -> None:
    assert_user_error(dcc("serve", "--wan-loss", "1.5"), 2, "--wan-loss")


def test_a_negative_count_is_refused() -> None:
    assert_user_error(dcc("listen", "--user", "u", "--count", "-1"), 2, "--count")


def test_a_time_that_is_neither_iso_nor_epoch_seconds_is_refused() -> None:
    assert_user_error(dcc("audit", "--since", "yesterday"), 2, "--since", "ISO 8601")


def test_an_unknown_command_and_an_unknown_option_are_usage_errors() -> None:
    assert_user_error(dcc("nosuch"), 2, "nosuch")
    assert_user_error(dcc("--bogus"), 2, "--bogus")


def test_a_missing_fleet_directory_says_so_and_how_to_make_one(tmp_path: Path) -> None:
    result = dcc("keys", "--fleet", str(tmp_path / "nothing"))
    assert_user_error(result, 2, "does not exist", "dcc fleet generate")


def test_a_truncated_devices_file_names_the_file_and_line(tmp_path: Path, fleet_dir: Path) -> None:
    broken = tmp_path / "fleet"
    broken.mkdir()
    for f in fleet_dir.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    lines = (fleet_dir / "devices.csv").read_text().splitlines()
    cut = lines[40].split(",")
    (broken / "devices.csv").write_text("\n".join([*lines[:40], ",".join(cut[:5])]) + "\n")
    result = dcc("serve", "--fleet", str(broken), "--data", str(tmp_path / "hub"))
    assert_user_error(result, 2, "devices.csv:41", "docs/fleet-files.md")


def test_debug_shows_the_traceback_as_well(tmp_path: Path) -> None:
    result = dcc("keys", "--fleet", str(tmp_path / "nothing"), env={"DCC_DEBUG": "1"})
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert "does not exist" in result.stderr.splitlines()[-2]


def test_an_output_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = dcc("fleet", "generate", "--sites", "3", "--seed", "1", "--out", str(blocker / "x"))
    assert_user_error(result, 2, str(blocker / "x"))


def test_a_missing_scenario_file_is_an_input_error() -> None:
    assert_user_error(dcc("simulate", "no-such-scenario.toml"), 2, "no-such-scenario.toml")


def test_a_bad_scenario_names_the_key_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[scenario]\nname = "x"\nstart = 2025-01-01T00:00:00Z\nduration = "1h"\n'
        'seed = "seven"\n[fleet]\nsites = 10\n'
    )
    result = dcc("simulate", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "bad.toml" in result.stderr
    assert "seed" in result.stderr


def test_a_missing_store_is_a_runtime_failure_on_stderr(tmp_path: Path) -> None:
    assert_user_error(dcc("audit", "--data", str(tmp_path)), 1, "no hub store", "--data")
    assert_user_error(dcc("report", "sla", "--data", str(tmp_path)), 1, "no hub store")


def test_send_to_a_user_not_in_the_fleet_says_it_must_be_in_users_csv(fleet_dir: Path) -> None:
    result = _read_request(fleet_dir, user="u-nobody")
    assert_user_error(result, 2, "u-nobody", "users.csv")


def test_send_to_a_hub_that_is_not_running_gives_one_line_and_status_1(fleet_dir: Path) -> None:
    result = _read_request(fleet_dir, f"tcp://127.0.0.1:{free_port()}")
    assert_user_error(result, 1, "no hub answered", "--connect-timeout")


def test_a_malformed_device_id_is_refused_before_anything_is_sent(fleet_dir: Path) -> None:
    result = _read_request(fleet_dir, f"tcp://127.0.0.1:{free_port()}", "--device", "NOTADEVICE")
    assert_user_error(result, 2, "device_id", "16 upper-case hexadecimal digits")


def test_a_device_the_hub_does_not_know_is_refused_with_its_code(tmp_path: Path) -> None:
    fleet = make_fleet(tmp_path / "fleet", sites=30, seed=4)
    user, _ = supplier_meter(fleet)
    settings = HubSettings(
        fleet_dir=tmp_path / "fleet",
        data_dir=tmp_path / "hub",
        endpoint="tcp://127.0.0.1:0",
        pools=1,
        tick_s=0.1,
    )
    with LiveHub(settings, fleet) as hub:
        result = dcc(
            "send",
            "--fleet",
            str(tmp_path / "fleet"),
            "--endpoint",
            hub.endpoint,
            "--user",
            user,
            "--role",
            "IS",
            "--service",
            "4.1.1",
            "--device",
            "FFFFFFFFFFFFFFF0",
        )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Refusal" in result.stdout
