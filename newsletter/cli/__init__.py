"""The ``newsletter`` command: thin, one module per stage; each parses arguments, calls a stage, prints.

A ``UserError`` anywhere becomes one readable line on stderr and exit status 2 — never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import typer

from ..errors import UserError

app = typer.Typer(
    name="newsletter",
    help="dangol — build, clean, send and track a monthly customer webzine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each stage module exposes register(app). Listed here so the command tree reads top to bottom.
STAGES = ("build", "site", "lists", "send", "schedule", "track", "report")

for _stage in STAGES:
    try:
        _module = importlib.import_module(f"{__name__}.{_stage}")
    except ModuleNotFoundError as exc:  # a stage not written yet
        if exc.name != f"{__name__}.{_stage}":
            raise
        continue
    _module.register(app)


def main() -> None:
    try:
        code = app(standalone_mode=False)  # returns the code of a typer.Exit instead of raising it
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors and the like
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            print("aborted", file=sys.stderr)
            sys.exit(1)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
