"""Session history in an embedded SQLite store, bounded in time (TTL) and size.

A DiffusionX session is a seed plus rounds: each round's prompt, the img2img strength chosen for
it (None for the txt2img first round) and its preview latent. Kept on disk so an edge restart does
not lose a session. Expiry is sliding: every read or write of a session renews it. Past
`max_sessions`, creating a session evicts the least recently used ones.

Seeds are unsigned 64-bit, SQLite's INTEGER is signed 64-bit: a seed is stored as the signed
integer with the same 64 bits (two's complement), so seeds below 2**63, and every database written
before, read back unchanged.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ecdiff.conventions import SEED_LIMIT, check_seed

_DTYPES = {str(d): d for d in (torch.float32, torch.float16, torch.bfloat16)}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, seed INTEGER NOT NULL, created REAL NOT NULL, touched REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rounds (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL, prompt TEXT NOT NULL, strength REAL,
    dtype TEXT NOT NULL, shape TEXT NOT NULL, latents BLOB NOT NULL,
    PRIMARY KEY (session_id, idx));
"""


@dataclass(frozen=True)
class StoreConfig:
    path: str | Path = ":memory:"
    ttl_s: float = 3600.0
    max_sessions: int = 1000
    max_rounds: int = 32

    def __post_init__(self) -> None:
        if not self.ttl_s > 0:
            raise ValueError(f"ttl_s must be > 0, got {self.ttl_s!r}")
        for name in ("max_sessions", "max_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class Round:
    index: int
    prompt: str
    strength: Optional[float]
    latents: torch.Tensor


class SessionNotFound(LookupError):
    """Unknown or expired session id; the message says which."""


class SessionStore:
    def __init__(self, config: StoreConfig = StoreConfig(), clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        if str(config.path) != ":memory:":
            Path(config.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(config.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, seed: int) -> str:
        session_id = uuid.uuid4().hex
        now = self._clock()
        with self._lock, self._transaction():
            self._purge_expired(now)
            excess = self._count() - self.config.max_sessions + 1
            if excess > 0:
                self._db.execute(
                    "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions ORDER BY touched LIMIT ?)", (excess,))
            self._db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                             (session_id, _signed(check_seed(seed)), now, now))
        return session_id

    def seed(self, session_id: str) -> int:
        with self._lock, self._transaction():
            return self._touch(session_id)

    def append_round(self, session_id: str, prompt: str, strength: Optional[float], latents: torch.Tensor) -> int:
        if str(latents.dtype) not in _DTYPES:
            raise ValueError(f"latents dtype {latents.dtype} cannot be stored; use one of {', '.join(_DTYPES)}")
        blob = latents.detach().to("cpu").contiguous().view(torch.uint8).numpy().tobytes()
        with self._lock, self._transaction():
            self._touch(session_id)
            (index,) = self._db.execute(
                "SELECT COUNT(*) FROM rounds WHERE session_id = ?", (session_id,)).fetchone()
            if index >= self.config.max_rounds:
                raise ValueError(f"session {session_id} already has the maximum of {self.config.max_rounds} rounds")
            self._db.execute(
                "INSERT INTO rounds VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, index, prompt, strength, str(latents.dtype), json.dumps(list(latents.shape)), blob))
        return index

    def rounds(self, session_id: str) -> list[Round]:
        with self._lock, self._transaction():
            self._touch(session_id)
            rows = self._db.execute(
                "SELECT idx, prompt, strength, dtype, shape, latents FROM rounds WHERE session_id = ? ORDER BY idx",
                (session_id,)).fetchall()
        return [Round(idx, prompt, strength, _tensor(dtype, shape, blob)) for idx, prompt, strength, dtype, shape, blob in rows]

    def delete(self, session_id: str) -> None:
        with self._lock, self._transaction():
            self._touch(session_id)
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

    def purge_expired(self) -> int:
        with self._lock, self._transaction():
            return self._purge_expired(self._clock())

    def _touch(self, session_id: str) -> int:
        """Renew the session and return its seed, or raise SessionNotFound."""
        now = self._clock()
        row = self._db.execute("SELECT seed, touched FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(f"unknown session {session_id!r}")
        seed, touched = row
        if now - touched > self.config.ttl_s:
            self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
            raise SessionNotFound(
                f"session {session_id!r} expired: unused for {now - touched:.0f} s (ttl {self.config.ttl_s:.0f} s)")
        self._db.execute("UPDATE sessions SET touched = ? WHERE id = ?", (now, session_id))
        return _unsigned(seed)

    def _purge_expired(self, now: float) -> int:
        return self._db.execute("DELETE FROM sessions WHERE touched < ?", (now - self.config.ttl_s,)).rowcount

    def _count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    """BEGIN/COMMIT, ROLLBACK on error; a raised SessionNotFound for an expired session still
    commits its deletion, since the session is gone either way."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.db.execute("ROLLBACK" if exc_type is not None and exc_type is not SessionNotFound else "COMMIT")
        return False


def _signed(seed: int) -> int:
    return seed - SEED_LIMIT if seed >= SEED_LIMIT // 2 else seed


def _unsigned(stored: int) -> int:
    return stored + SEED_LIMIT if stored < 0 else stored


def _tensor(dtype: str, shape: str, blob: bytes) -> torch.Tensor:
    flat = torch.frombuffer(bytearray(blob), dtype=torch.uint8)
    return flat.view(_DTYPES[dtype]).reshape(json.loads(shape))
