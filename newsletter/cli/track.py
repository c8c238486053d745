"""``newsletter serve``: the tracking web app (pixel, clicks, unsubscribe, SendGrid webhook, archive) on uvicorn."""

from __future__ import annotations

import copy
import os

import typer

from . import common


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option("127.0.0.1", help="Address to listen on (put a TLS proxy in front)."),
        port: int = typer.Option(8080, help="Port to listen on."),
        workers: int = typer.Option(1, min=1, help="Worker processes."),
        access_log: bool = typer.Option(False, "--access-log", help="Log every request (off: URLs carry tokens)."),
        forwarded_allow_ips: str = typer.Option(
            "127.0.0.1", help="Proxies whose X-Forwarded-For is trusted for the client address."),
        config: str = common.ConfigOption,
    ) -> None:
        """Serve tracking, unsubscribe, the SendGrid webhook and the web archive until Ctrl-C."""
        import uvicorn

        from ..db import get_engine
        from ..track.app import create_app

        cfg = common.config(config)
        get_engine(cfg)  # create the schema once, before workers start
        create_app(cfg)  # fail here, readably, on a missing secret or a bad webhook key
        if not os.environ.get("NEWSLETTER_SECRET"):
            common.err_console.print("warning: NEWSLETTER_SECRET is not set; using state/secret.key, so only links "
                                     "signed on this machine will verify")
        common.err_console.print(
            f"serving tracking and archive on http://{host}:{port}/ (archive: {cfg.path(cfg.paths.build) / 'site'})")
        if workers == 1:
            server_app = create_app(cfg)
        else:  # each worker process builds its own app (and database connections) from the config
            os.environ["NEWSLETTER_CONFIG"] = os.path.abspath(cfg.source)
            server_app = "newsletter.track.app:app_from_env"
        uvicorn.run(server_app, host=host, port=port, workers=workers, factory=workers > 1,
                    access_log=access_log, proxy_headers=True, forwarded_allow_ips=forwarded_allow_ips,
                    log_level="info", log_config=_log_config(), timeout_graceful_shutdown=30)


def _log_config() -> dict:
    """uvicorn's logging, plus the app's own lines (database retries, events written at shutdown)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["newsletter"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config
