"""One serving worker of ``freshrec serve --workers N`` (started by the supervisor).

A full replica: its own engine, recovered from the newest snapshot and the log, and a
learner thread applying the log in position order; its request threads only read.
It answers on the supervisor's listening socket, shared by all workers, and on a Unix
socket of its own, where the other workers reach it (:mod:`freshrec.service.cluster`).
"""

from __future__ import annotations

import argparse
import ctypes
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from freshrec.errors import StoreUnavailable
from freshrec.service.app import create_app
from freshrec.service.cluster import Cluster, socket_path
from freshrec.service.runtime import Runtime
from freshrec.service.server import (
    DATABASE_URL_ENV,
    configure_process,
    exit_zero,
    open_stores,
    uvicorn_config,
)
from freshrec.service.settings import Settings

TOKEN_ENV = "FRESHREC_INTERNAL_TOKEN"
PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--fd", type=int, required=True, help="the shared listening socket")
    parser.add_argument("--parent", type=int, required=True, help="the supervisor's pid")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    _end_with(args.parent)
    signal.signal(signal.SIGTERM, exit_zero)
    token = os.environ.pop(TOKEN_ENV)  # not for the training processes this one starts
    database_url = os.environ.pop(DATABASE_URL_ENV, None)  # they get it in their job
    configure_process(args.log_level)
    shared = socket.socket(fileno=args.fd)
    settings = Settings.from_env(data_dir=args.data_dir, host=shared.getsockname()[0],
                                 port=shared.getsockname()[1])
    try:
        stores = open_stores(args.data_dir, database_url)
    except StoreUnavailable as error:  # the database went away since the supervisor's check
        logging.getLogger("freshrec").error("worker %d cannot start: %s", args.index, error)
        sys.exit(1)  # the supervisor starts it again, after a back-off
    cluster = Cluster(args.data_dir, args.index, args.workers, token)
    runtime = Runtime(settings, stores, cluster=cluster)
    uvicorn.Server(uvicorn_config(create_app(runtime), args.log_level)).run(
        sockets=[shared, _own_socket(socket_path(args.data_dir, args.index))])


def _end_with(parent: int) -> None:
    """Be killed when the supervisor dies, however it dies (Linux); a worker without
    one would hold the data directory's lock and serve stale answers."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _own_socket(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)  # a socket file left by this worker's previous life
    own = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    own.bind(str(path))
    os.chmod(path, 0o600)
    own.listen(64)
    return own


if __name__ == "__main__":
    main()
