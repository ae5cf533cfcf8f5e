"""The server itself: uvicorn on a socket taskfit binds (so `--port 0` can say which port it
got), one process, the model loaded before the first request. SIGTERM and Ctrl-C stop taking
connections, answer the requests in flight, then exit (uvicorn's graceful shutdown)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path

from taskfit.errors import TaskfitError
from taskfit.inference.predict import Predictor


def bind(host: str, port: int) -> socket.socket:
    """The listening socket; an address in use or not this machine's is a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it a response written in two parts waited for
    # the client's delayed ACK, 44 ms for GET /health on the loopback (2 ms with it)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TaskfitError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror}); choose "
            "another port (--port 0 takes a free one) or an address of this machine"
        ) from None
    sock.listen(2048)
    return sock


def serve(
    run_dir: Path, host: str, port: int, max_rows: int, max_wait_ms: float, log: bool
) -> None:
    import uvicorn

    from taskfit.serve.app import make_app

    predictor = Predictor.load(run_dir, traced=True)
    app = make_app(predictor, max_rows, max_wait_ms / 1000)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    # without --log, uvicorn's errors only: its "Invalid HTTP request received" warnings for a
    # malformed request are the client's to see (a 400), not the server's stderr
    config = uvicorn.Config(
        app, log_level="info" if log else "error", access_log=log, timeout_graceful_shutdown=30
    )
    print(
        f"serving {run_dir} on http://{shown}:{bound_port} (POST /predict, GET /health, "
        "GET /info, /docs); Ctrl-C or SIGTERM stops it",
        file=sys.stderr,
        flush=True,
    )
    # uvicorn takes SIGTERM over while it serves, then ends the process by the signal itself,
    # as a supervisor (systemd, Kubernetes) expects a server to end: not taskfit's exit 143
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    uvicorn.Server(config).run(sockets=[sock])
