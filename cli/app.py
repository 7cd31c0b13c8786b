"""The ``dcc`` typer application: one sub-command per user task.

Decides: which commands exist and how they are grouped, the options every command shares
(``--debug``), and the one place where an error becomes a message and an exit status
(``cli.errors``): a command raises, this module reports.
Must never: hold hub decisions; it calls the core and the drivers.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import typer
from typer.core import TyperGroup

from cli import errors
from cli.catalogue_cmd import catalogue
from cli.demo_cmd import demo
from cli.errors import ExitStatus, UserError
from cli.fleet_cmd import fleet_app
from cli.hub_cmds import audit, keys, listen, send, serve
from cli.report_cmd import report_app
from cli.simulate_cmd import simulate


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
    add_completion=False,
)


@app.callback()
def _options(
    debug: bool = typer.Option(
        False,
        "--debug",
        envvar="DCC_DEBUG",
        help="Show the traceback of an error (also DCC_DEBUG=1).",
    ),
) -> None:
    """dcc-hub: smart-metering communications hub and fleet simulator."""


app.command("catalogue")(catalogue)
app.add_typer(fleet_app, name="fleet", help="Generate synthetic fleets.")
app.command("keys")(keys)
app.command("serve")(serve)
app.command("send")(send)
app.command("listen")(listen)
app.command("audit")(audit)
app.command("demo")(demo)
app.add_typer(report_app, name="report")
app.command("simulate")(simulate)


def main() -> None:
    """Console entry point: runs the app and turns whatever escapes it into a message and an
    exit status (usage errors found before a command starts, such as an unknown option)."""
    try:
        status = app(prog_name="dcc", standalone_mode=False)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        status = ExitStatus.FAILURE
    except typer.TyperException as exc:
        raise SystemExit(_fail(exc, debug=False).exit_code) from None
    except Exception as exc:
        raise SystemExit(_fail(exc, debug="--debug" in sys.argv).exit_code) from None
    raise SystemExit(status if isinstance(status, int) else 0)
