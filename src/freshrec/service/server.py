"""Running the service under uvicorn with embedded stores."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from freshrec._sqlite import check_integrity
from freshrec.service.app import create_app
from freshrec.service.data_lock import DataDirLock
from freshrec.service.runtime import Runtime, Stores
from freshrec.service.settings import Settings


def build_app(settings: Settings):  # type: ignore[no-untyped-def]
    runtime = Runtime(settings, Stores.embedded(settings.data_dir))
    return create_app(runtime)


def run_server(data_dir: Path, host: str, port: int, log_level: str = "info") -> None:
    """Serve until SIGTERM/SIGINT. Refuses to start (DataDirLocked, StoreUnavailable)
    while another server holds ``data_dir`` or one of its SQLite files is damaged."""
    signal.signal(signal.SIGTERM, _exit_zero)
    with DataDirLock(data_dir):
        for path in sorted(data_dir.glob("*.sqlite")):
            check_integrity(path)
        _serve(data_dir, host, port, log_level)


def _exit_zero(*_: object) -> None:
    """SIGTERM is how service managers stop a service, so it ends with exit code 0.

    uvicorn handles the signal itself while it serves (finish in-flight requests,
    close the stores), then re-raises it to the handler it found: this one.
    """
    raise SystemExit(0)


def _serve(data_dir: Path, host: str, port: int, log_level: str) -> None:
    settings = Settings.from_env(data_dir=data_dir, host=host, port=port)
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Shorter GIL time slices: a request waiting behind an ingest batch gets the
    # interpreter sooner, which is what keeps tail latency low on a busy core.
    sys.setswitchinterval(0.001)
    # One BLAS thread: serving does small matrix products, where a second thread only
    # contends for the core that the next request needs. Trainings run in their own
    # process with their own limit.
    threadpool_limits(1)
    app = build_app(settings)
    # Access logs are off: they would cost more than the requests they describe, and
    # the metrics endpoint counts requests by route and status instead.
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False,
                timeout_graceful_shutdown=10)
