"""What every command shares: the config option, the console, JSON output, summary tables."""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable

import typer
from rich.console import Console
from rich.table import Table

from ..config import Config, load_config

console = Console()
err_console = Console(stderr=True)

ConfigOption = typer.Option("config.yaml", "--config", "-c", help="Path to config.yaml.", envvar="NEWSLETTER_CONFIG")
JsonOption = typer.Option(False, "--json", help="Print the result as JSON (for scripts).")


def config(path: str) -> Config:
    return load_config(path)


def print_json(data: Any) -> None:
    """JSON on stdout, UTF-8, Korean kept readable."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def summary_table(title: str, rows: Iterable[tuple[Any, ...]], columns: tuple[str, ...] = ("", "count")) -> None:
    table = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(c) for c in row))
    console.print(table)
