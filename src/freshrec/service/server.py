"""Running the service under uvicorn: one process, or N workers.

The stores are chosen here (:func:`open_stores`), once per serving process: all
embedded under the data directory, or with ``--database-url`` every store (the event
log, the catalog, the keys, the model registry, the experiments, the state's snapshots
and the models' artifacts) in PostgreSQL, and under the data directory only what one
machine's processes share: the serve lock, the leader's lease and the workers' positions.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from freshrec._sqlite import check_integrity
from freshrec.service.app import create_app
from freshrec.service.data_lock import DataDirLock
from freshrec.service.placement import DATABASE_MARK, check_placement
from freshrec.service.runtime import Runtime, Stores
from freshrec.service.settings import Settings

log = logging.getLogger("freshrec")
DATABASE_URL_ENV = "FRESHREC_DATABASE_URL"
"""How the supervisor hands the URL to its workers: an argument would show the
password to anyone running ``ps``."""


def open_stores(data_dir: Path, database_url: str | None) -> Stores:
    """The stores of one serving process: embedded, or scaled with ``database_url``.

    Refuses (StoreUnavailable) a data directory that was used with the other kind of
    stores (:func:`~freshrec.service.placement.check_placement`), and a database it
    cannot reach.
    """
    check_placement(data_dir, database_url)
    if not database_url:
        return Stores.embedded(data_dir)
    stores = Stores.scaled(data_dir, database_url)
    from freshrec._postgres import describe  # psycopg is there: the stores opened

    mark = data_dir / DATABASE_MARK
    if not mark.exists():
        mark.write_text(f"{describe(database_url)}\n")
    return stores


def where_stores_are(database_url: str) -> str:
    """The log line saying where the stores of a scaled server are (no password)."""
    from freshrec._postgres import describe

    return (f"event log, catalog, keys, models registry, experiments, snapshots and model "
            f"artifacts in PostgreSQL at {describe(database_url)}")


def build_app(settings: Settings):  # type: ignore[no-untyped-def]
    runtime = Runtime(settings, Stores.embedded(settings.data_dir))
    return create_app(runtime)


def default_workers() -> int:
    """One serving worker per CPU this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def run_server(data_dir: Path, host: str, port: int, log_level: str = "info",
               workers: int = 1, database_url: str | None = None) -> None:
    """Serve until SIGTERM/SIGINT. Refuses to start (DataDirLocked, StoreUnavailable)
    while another server holds ``data_dir``, one of its SQLite files is damaged, or
    the database at ``database_url`` cannot be opened.

    With ``workers`` > 1 this process supervises that many serving processes on one
    port (:mod:`freshrec.service.supervisor`); with 1 it serves itself.
    """
    signal.signal(signal.SIGTERM, exit_zero)
    with DataDirLock(data_dir) as lock:
        for path in sorted(data_dir.glob("*.sqlite")):
            check_integrity(path)
        if workers > 1:
            from freshrec.service.supervisor import Supervisor

            configure_process(log_level)
            Supervisor(data_dir, host, port, workers, log_level, lock, database_url).run()
        else:
            _serve(data_dir, host, port, log_level, database_url)


def exit_zero(*_: object) -> None:
    """SIGTERM is how service managers stop a service, so it ends with exit code 0.

    uvicorn handles the signal itself while it serves (finish in-flight requests,
    close the stores), then re-raises it to the handler it found: this one.
    """
    raise SystemExit(0)


def configure_process(log_level: str) -> None:
    """Logging, and the interpreter and BLAS settings every serving process runs with."""
    logging.basicConfig(level=getattr(logging, log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per call between workers
    # Shorter GIL time slices: a request waiting behind an ingest batch gets the
    # interpreter sooner, which is what keeps tail latency low on a busy core.
    sys.setswitchinterval(0.001)
    # One BLAS thread: serving does small matrix products, where a second thread only
    # contends for the core that the next request needs. Trainings run in their own
    # process with their own limit.
    threadpool_limits(1)


def uvicorn_config(app: object, log_level: str, **bind: object) -> uvicorn.Config:
    # Access logs are off: they would cost more than the requests they describe, and
    # the metrics endpoint counts requests by route and status instead.
    return uvicorn.Config(app, log_level=log_level, access_log=False,  # type: ignore[arg-type]
                          timeout_graceful_shutdown=10, **bind)  # type: ignore[arg-type]


def _serve(data_dir: Path, host: str, port: int, log_level: str,
           database_url: str | None) -> None:
    settings = Settings.from_env(data_dir=data_dir, host=host, port=port)
    configure_process(log_level)
    stores = open_stores(data_dir, database_url)
    if stores.database_url:
        log.info("%s", where_stores_are(stores.database_url))
    app = create_app(Runtime(settings, stores))
    uvicorn.Server(uvicorn_config(app, log_level, host=host, port=port)).run()
