"""Per-replica engine metrics across Ray: a small named actor holds each replica's latest
`EngineSnapshot`; replicas put theirs every second, the gRPC front end's Prometheus exporter reads
them at scrape time (`replica` label). A replica not heard from for `MAX_AGE_S` is dropped."""

from __future__ import annotations

import time

import ray

from ecdiff.engine.core import EngineSnapshot

NAMESPACE = "ecdiff"
MAX_AGE_S = 10.0


@ray.remote(num_cpus=0)
class StatsBoard:
    def __init__(self) -> None:
        self._latest: dict[str, tuple[float, EngineSnapshot]] = {}

    def put(self, replica: str, snapshot: EngineSnapshot) -> None:
        self._latest[replica] = (time.monotonic(), snapshot)

    def latest(self) -> dict[str, EngineSnapshot]:
        now = time.monotonic()
        self._latest = {r: (t, s) for r, (t, s) in self._latest.items() if now - t <= MAX_AGE_S}
        return {r: s for r, (_, s) in self._latest.items()}


def create_board(name: str):
    """The board of one Serve application (created by the front end before the replicas start)."""
    return StatsBoard.options(name=name, namespace=NAMESPACE, get_if_exists=True).remote()


class StatsBoardClient:
    """The replicas' side: fire and forget (a lost update is replaced a second later)."""

    def __init__(self, name: str) -> None:
        self._board = ray.get_actor(name, namespace=NAMESPACE)

    def put(self, replica: str, snapshot: EngineSnapshot) -> None:
        self._board.put.remote(replica, snapshot)


def read_board(board, timeout_s: float = 10.0) -> dict[str, EngineSnapshot]:
    return ray.get(board.latest.remote(), timeout=timeout_s)
