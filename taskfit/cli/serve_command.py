"""`taskfit serve RUN_DIR`: the run's model behind an HTTP JSON API (the `serve` extra)."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from taskfit.cli.common import RunArg, handled
from taskfit.errors import TaskfitError


def serve(
    run: RunArg,
    host: Annotated[
        str, typer.Option(help="the address to listen on; 0.0.0.0 opens it to the network")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="0 takes a free port")] = 8000,
    max_batch: Annotated[
        int, typer.Option(min=1, help="rows at most in one model call (concurrent requests)")
    ] = 1024,
    max_wait_ms: Annotated[
        float,
        typer.Option(min=0.0, help="how long a request waits for others to share a model call"),
    ] = 2.0,
    log: Annotated[bool, typer.Option("--log", help="log each request to stderr")] = False,
) -> None:
    """Serve a run's model over HTTP: POST /predict (one row or a list, by column name),
    GET /health, GET /info and the OpenAPI page at /docs."""
    with handled():
        missing = [m for m in ("fastapi", "uvicorn") if importlib.util.find_spec(m) is None]
        if missing:
            raise TaskfitError(
                f"taskfit serve needs {' and '.join(missing)}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed; "
                "install them with: pip install 'taskfit[serve]'"
            )
        from taskfit.serve.server import serve as run_server

        run_server(run, host, port, max_batch, max_wait_ms, log)
