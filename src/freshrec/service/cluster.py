"""A serving worker's view of the others on its machine (``freshrec serve --workers N``).

Every worker is a full replica: it applies the log itself and answers reads from its
own engine. What they share is small and lives here:

- the positions file (:mod:`freshrec.service.positions`): what was acknowledged, by
  whom, and how far each learner is;
- the lifecycle's lease: one worker at a time holds ``leader.lock`` (an ``flock``, so
  the kernel hands it to another worker the moment the holder dies, ``kill -9``
  included) and is the only one to train, snapshot, prune, rebuild and erase;
- one Unix socket per worker under ``run/``, on which the same app answers, so that an
  admin request that reached any worker is carried out by the leader, and the leader
  can tell the others to take up a new champion or forget an erased user before it
  answers. Those calls carry the run's secret token (``X-Freshrec-Internal``).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import httpx

from freshrec.service.positions import SharedPositions

log = logging.getLogger("freshrec")
INTERNAL_HEADER = "X-Freshrec-Internal"
WORKER_HEADER = "X-Freshrec-Worker"
LEADER_LOCK = "leader.lock"
POSITIONS_FILE = "positions.bin"
MAX_SOCKET_PATH = 100
PEER_TIMEOUT_S = 120.0
"""A peer taking up a champion loads and replays an artifact: seconds on a big model."""


def run_dir(data_dir: Path) -> Path:
    """Where the workers' shared files and sockets are: ``<data_dir>/run``, unless that
    path is too long for a Unix socket's name (about 100 bytes), then one in /tmp."""
    preferred = data_dir.resolve() / "run"
    if len(str(preferred)) + len("/worker-63.sock") < MAX_SOCKET_PATH:
        return preferred
    digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"freshrec-{digest}"


def socket_path(data_dir: Path, worker: int) -> Path:
    return run_dir(data_dir) / f"worker-{worker}.sock"


class Cluster:
    """Worker ``index`` of ``count`` over ``data_dir``; the supervisor made the files."""

    def __init__(self, data_dir: Path, index: int, count: int, token: str) -> None:
        self.data_dir = data_dir
        self.index = index
        self.count = count
        self._token = token
        self.positions = SharedPositions(run_dir(data_dir) / POSITIONS_FILE)
        self.became_leader = threading.Event()
        self._lease: IO[bytes] | None = None
        self._campaign: threading.Thread | None = None

    # -- the lifecycle's lease ------------------------------------------------------
    @property
    def is_leader(self) -> bool:
        return self.became_leader.is_set()

    def campaign(self, elected: Callable[[], object]) -> None:
        """Wait in a thread for the lease; call ``elected`` once it is ours."""
        def wait_for_lease() -> None:
            lease = open(run_dir(self.data_dir) / LEADER_LOCK, "a+b")  # noqa: SIM115
            fcntl.flock(lease.fileno(), fcntl.LOCK_EX)  # held until this process ends
            self._lease = lease
            self.positions.set_leader(self.index)
            log.info("worker %d leads the lifecycle", self.index)
            self.became_leader.set()
            elected()

        self._campaign = threading.Thread(target=wait_for_lease, daemon=True,
                                          name="freshrec-campaign")
        self._campaign.start()

    # -- shared positions -----------------------------------------------------------
    def committed(self, position: int) -> None:
        self.positions.set_committed(self.index, position)

    def applied(self, position: int) -> None:
        self.positions.set_applied(self.index, position)

    def acknowledged(self) -> int:
        """The last position any worker acknowledged: what a read must reflect."""
        return self.positions.committed()

    def serving(self, pid: int) -> None:
        self.positions.set_ready(self.index, pid)

    def workers(self) -> list[dict[str, Any]]:
        """Each worker's pid (0: not serving) and learner position."""
        return [{"worker": i, "pid": self.positions.ready(i),
                 "position": self.positions.applied(i),
                 "leader": self.positions.leader() == i} for i in range(self.count)]

    # -- calls between workers ------------------------------------------------------
    def internal(self, headers: Any) -> bool:
        """Whether a request carries this run's token (it came from another worker)."""
        given = headers.get(INTERNAL_HEADER)
        return given is not None and hmac.compare_digest(given, self._token)

    def leader_client(self) -> httpx.AsyncClient | None:
        """A client to the leader's socket, or None while no worker holds the lease."""
        leader = self.positions.leader()
        if leader < 0 or leader == self.index:
            return None
        return self._client(leader, httpx.AsyncClient, httpx.AsyncHTTPTransport)

    def tell_peers(self, method: str, path: str, body: dict[str, Any] | None = None
                   ) -> dict[int, str]:
        """Call ``path`` on every other serving worker, all at once, and wait for them.

        Returns the workers that failed, with why; a worker that is not serving is
        skipped: it restores from the stores when it starts, and sees the change then.
        """
        failed = {worker: answer if isinstance(answer, str)
                  else f"{answer.status_code} {answer.text}"
                  for worker, answer in self.call_peers(method, path, body).items()
                  if isinstance(answer, str) or answer.status_code >= 300}
        for worker, why in failed.items():
            log.warning("worker %d did not take %s %s: %s", worker, method, path, why)
        return failed

    def call_peers(self, method: str, path: str, body: dict[str, Any] | None = None
                   ) -> dict[int, httpx.Response | str]:
        """Each serving peer's answer to ``method path``, or why there is none."""
        peers = [i for i in range(self.count)
                 if i != self.index and self.positions.ready(i)]
        if not peers:
            return {}

        def call(worker: int) -> httpx.Response | str:
            try:
                with self._client(worker, httpx.Client, httpx.HTTPTransport) as client:
                    return client.request(method, path, json=body)
            except httpx.HTTPError as error:
                return f"{type(error).__name__}: {error}"

        with ThreadPoolExecutor(max_workers=len(peers)) as pool:
            return dict(zip(peers, pool.map(call, peers), strict=True))

    def _client(self, worker: int, kind: Any, transport: Any) -> Any:
        return kind(transport=transport(uds=str(socket_path(self.data_dir, worker))),
                    base_url="http://worker", timeout=PEER_TIMEOUT_S,
                    headers={INTERNAL_HEADER: self._token})

    def close(self) -> None:
        self.positions.set_ready(self.index, 0)
        self.positions.close()
