"""The ``scratchcheck`` command: a thin layer of click commands over the library."""

from __future__ import annotations

import sys
import traceback

import click

from ..errors import ScratchcheckError, file_being_read
from .audit_cmd import audit_command
from .compare_cmd import compare_command
from .demo_cmd import demo_command
from .fingerprint_cmd import fingerprint_command, verify_command
from .index_cmd import index_command
from .inspect_cmd import inspect_command
from .process import end_now, keep_freed_memory
from .registry_cmd import registry_group
from .scan_cmd import scan_command

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 4  # 3 is the audit's UNDETERMINED: a crash must never read as a policy answer


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="scratchcheck")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Was this model trained from scratch? Compare checkpoints component by component."""
    ctx.obj = {"debug": debug}


cli.add_command(inspect_command)
cli.add_command(compare_command)
cli.add_command(demo_command)
cli.add_command(audit_command)
cli.add_command(fingerprint_command)
cli.add_command(verify_command)
cli.add_command(registry_group)
cli.add_command(index_command)
cli.add_command(scan_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error is one line on stderr and a non-zero exit, unless --debug."""
    args = sys.argv[1:] if argv is None else argv
    keep_freed_memory()
    debug = "--debug" in args
    try:
        cli.main(args=args, prog_name="scratchcheck", standalone_mode=False)
    except ScratchcheckError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"scratchcheck: error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        click.echo("scratchcheck: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:  # a wrong argument or option: one line too, with where to look
        message = " ".join(exc.format_message().split())
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see `{exc.ctx.command_path} --help`)"
        click.echo(f"scratchcheck: error: {message}{hint}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        click.echo(f"scratchcheck: error: {where}{exc.strerror or exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except Exception as exc:  # a bug: still one line, naming the file it met, with the way to see more
        if debug:
            traceback.print_exc()
        where = f" while reading {path}" if (path := file_being_read(exc)) else ""
        detail = " ".join(str(exc).split())
        click.echo(
            f"scratchcheck: internal error{where}: {type(exc).__name__}: {detail} (rerun with --debug for details)",
            err=True,
        )
        sys.exit(EXIT_INTERNAL)
    if argv is None:  # the command line itself, not a caller of main() that goes on
        end_now()
