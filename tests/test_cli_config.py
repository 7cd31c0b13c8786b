"""The dcc command line's configuration, driven in a subprocess: a ``dcc.toml`` in the working
directory (or ``--config``) and ``DCC_*`` variables replace the repeated options, with the
command line over the environment over the file over the defaults; ``--version`` and ``-h``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.live_support import free_port, make_fleet
from tests.test_cli_errors import assert_user_error, dcc

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("cli-config") / "fleet"
    make_fleet(directory, sites=20, seed=5)
    return directory


def test_a_dcc_toml_in_the_working_directory_names_the_fleet(
    tmp_path: Path, fleet_dir: Path
) -> None:
    (tmp_path / "dcc.toml").write_text(f'fleet = "{fleet_dir}"\n')
    result = dcc("keys", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["keys"] == str(fleet_dir / "keys")


def test_the_environment_beats_the_file_and_the_command_line_beats_both(
    tmp_path: Path, fleet_dir: Path
) -> None:
    (tmp_path / "dcc.toml").write_text('fleet = "from-the-file"\n')
    env = {"DCC_FLEET": str(tmp_path / "from-the-environment")}
    by_env = dcc("keys", cwd=tmp_path, env=env)
    assert_user_error(by_env, 2, "from-the-environment")
    by_option = dcc("keys", "--json", "--fleet", str(fleet_dir), cwd=tmp_path, env=env)
    assert by_option.returncode == 0, by_option.stderr
    by_file = dcc("keys", cwd=tmp_path)
    assert_user_error(by_file, 2, "from-the-file")


def test_a_named_config_file_sets_a_commands_own_options(tmp_path: Path, fleet_dir: Path) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text(
        f'fleet = "{fleet_dir}"\nendpoint = "tcp://127.0.0.1:{free_port()}"\n'
        "[send]\nconnect_timeout = 0.5\n"
    )
    result = dcc(
        "--config", str(config), "send", "--user", "u-supa", "--role", "IS", "--service", "4.1.1"
    )
    assert_user_error(result, 1, "within 0.5 s")


def test_dcc_endpoint_in_the_environment_is_checked_like_the_option(fleet_dir: Path) -> None:
    result = dcc(
        "send",
        "--fleet",
        str(fleet_dir),
        "--user",
        "u-supa",
        "--role",
        "IS",
        "--service",
        "4.1.1",
        env={"DCC_ENDPOINT": "localhost:5570"},
    )
    assert_user_error(result, 2, "tcp://localhost:5570")


def test_a_misspelt_key_in_the_file_is_refused_with_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "dcc.toml").write_text('flet = "x"\n[send]\nwiat = 3\n')
    assert_user_error(dcc("catalogue", cwd=tmp_path), 2, "dcc.toml", "flet")


def test_a_missing_named_config_file_is_refused(tmp_path: Path) -> None:
    result = dcc("--config", str(tmp_path / "none.toml"), "catalogue")
    assert_user_error(result, 2, "none.toml")


def test_version_and_short_help() -> None:
    version = dcc("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("dcc-hub ")
    short = dcc("send", "-h")
    assert short.returncode == 0
    assert "--connect-timeout" in short.stdout
    assert "DCC_FLEET" in short.stdout
