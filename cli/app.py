"""The ``dcc`` typer application: one sub-command per user task.

Decides: which commands exist and how they are grouped, the options every command shares
(``--debug``, ``--log-level``, ``--log-format``: logging is configured here, once), and the one place where an error becomes a message and an exit status
(``cli.errors``): a command raises, this module reports.
Must never: hold hub decisions; it calls the core and the drivers.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any

import typer
import typer.main
from typer.core import TyperGroup

from cli import errors
from cli.catalogue_cmd import catalogue
from cli.config import CONFIG, load_default_map
from cli.demo_cmd import demo
from cli.errors import ExitStatus, UserError
from cli.fleet_cmd import fleet_app
from cli.hub_cmds import audit, health, keys_app, listen, send, serve
from cli.inventory_cmd import inventory_app
from cli.logs import LogFormat, LogLevel, configure
from cli.report_cmd import report_app
from cli.simulate_cmd import simulate
from cli.utrn_cmd import utrn


def _usage(exc: typer.TyperException) -> UserError:
    """A usage error (bad option, unknown command) as one line and a pointer to the help."""
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "dcc"
    return UserError(
        exc.format_message().replace("Value error, ", ""),
        f"see '{where} --help'",
        ExitStatus.USAGE if exc.exit_code == ExitStatus.USAGE else ExitStatus.FAILURE,
    )


def _debugging(ctx: typer.Context | None) -> bool:
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug"))


def _fail(exc: BaseException, debug: bool) -> typer.Exit:
    """Report ``exc`` (a traceback first when debugging) and return the exit to raise."""
    if isinstance(exc, typer.TyperException):
        err = _usage(exc)
    else:
        err = errors.explain(exc) or errors.internal(exc)
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    errors.report(err)
    return typer.Exit(int(err.status))


class DccGroup(TyperGroup):
    """The top-level group: every sub-command runs inside its error handling."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(ExitStatus.INTERRUPTED) from None
        except Exception as exc:
            raise _fail(exc, _debugging(ctx)) from None


app = typer.Typer(
    cls=DccGroup,
    help="dcc-hub: smart-metering communications hub and fleet simulator.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"dcc-hub {version('dcc-hub')}\n")
        raise typer.Exit()


@app.callback()
def _options(
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="DCC_DEBUG",
        help="Show the traceback of an error (also DCC_DEBUG=1).",
    ),
    config: Path | None = CONFIG,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    log_level: LogLevel = typer.Option(
        LogLevel.WARNING,
        "--log-level",
        envvar="DCC_LOG_LEVEL",
        case_sensitive=False,
        help="Least severe log lines written to stderr (docs/cli.md says what each level holds).",
    ),
    log_format: LogFormat = typer.Option(
        LogFormat.HUMAN,
        "--log-format",
        envvar="DCC_LOG_FORMAT",
        case_sensitive=False,
        help="Log lines for a person (human) or one JSON object a line (json).",
    ),
) -> None:
    """dcc-hub: smart-metering communications hub and fleet simulator.

    Options can also come from DCC_* environment variables and a dcc.toml file
    (docs/cli.md): the command line wins over the environment, which wins over the file.
    """
    configure(log_level, log_format)


app.command("catalogue")(catalogue)
app.add_typer(fleet_app, name="fleet", help="Generate synthetic fleets.")
app.add_typer(keys_app, name="keys")
app.command("serve")(serve)
app.command("health")(health)
app.command("send")(send)
app.command("listen")(listen)
app.command("audit")(audit)
app.add_typer(inventory_app, name="inventory")
app.command("demo")(demo)
app.add_typer(report_app, name="report")
app.command("simulate")(simulate)
app.command("utrn")(utrn)


def main() -> None:
    """Console entry point: runs the app and turns whatever escapes it into a message and an
    exit status (usage errors found before a command starts, such as an unknown option)."""
    args = sys.argv[1:]
    try:
        command = typer.main.get_command(app)
        defaults = load_default_map(command, args)
        status = command.main(args, prog_name="dcc", standalone_mode=False, default_map=defaults)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        status = ExitStatus.FAILURE
    except typer.TyperException as exc:
        raise SystemExit(_fail(exc, debug=False).exit_code) from None
    except Exception as exc:
        debug = "--debug" in args or os.environ.get("DCC_DEBUG", "") not in ("", "0")
        raise SystemExit(_fail(exc, debug).exit_code) from None
    raise SystemExit(status if isinstance(status, int) else 0)
