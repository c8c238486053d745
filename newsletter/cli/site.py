"""``newsletter preview``: serve build/ locally and rebuild on every save (the stage lives in newsletter.preview)."""

from __future__ import annotations

import typer

from .common import ConfigOption, config, console


def register(app: typer.Typer) -> None:
    @app.command()
    def preview(
        port: int = typer.Option(8000, "--port", "-p", help="Port to listen on."),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep 127.0.0.1 unless you mean it)."),
        interval: float = typer.Option(0.5, "--interval", help="Seconds between checks for changed files."),
        config_path: str = ConfigOption,
    ) -> None:
        """Serve build/ (e-mails and web archive) and rebuild when content/, templates/ or config.yaml change."""
        from ..preview import Preview

        cfg = config(config_path)
        server = Preview(cfg, host=host, port=port, interval=interval,
                         log=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
        server.start().wait()
