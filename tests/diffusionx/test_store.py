import sqlite3

import pytest
import torch

from ecdiff.diffusionx import SessionNotFound, SessionStore, StoreConfig


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def latents(seed, dtype=torch.float32):
    return torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(seed)).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_rounds_round_trip_exactly(clock, dtype):
    store = SessionStore(StoreConfig(), clock)
    sid = store.create(seed=42)
    assert store.append_round(sid, "a red circle", None, latents(1, dtype)) == 0
    assert store.append_round(sid, "a blue circle", 0.55, latents(2, dtype)) == 1
    rounds = store.rounds(sid)
    assert [(r.index, r.prompt, r.strength) for r in rounds] == [(0, "a red circle", None), (1, "a blue circle", 0.55)]
    assert torch.equal(rounds[1].latents, latents(2, dtype)) and rounds[1].latents.dtype == dtype
    assert store.seed(sid) == 42


def test_survives_a_restart(tmp_path, clock):
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(StoreConfig(path=path), clock)
    sid = store.create(seed=7)
    store.append_round(sid, "a green square", None, latents(3))
    store.close()
    reopened = SessionStore(StoreConfig(path=path), clock)
    assert torch.equal(reopened.rounds(sid)[0].latents, latents(3))


def test_unknown_and_expired_sessions(clock):
    store = SessionStore(StoreConfig(ttl_s=60), clock)
    with pytest.raises(SessionNotFound, match="unknown session"):
        store.rounds("nope")
    sid = store.create(seed=1)
    clock.now += 59
    store.rounds(sid)  # a use renews the session
    clock.now += 59
    store.append_round(sid, "p", None, latents(0))
    clock.now += 61
    with pytest.raises(SessionNotFound, match="expired"):
        store.rounds(sid)
    with pytest.raises(SessionNotFound, match="unknown session"):  # and it is gone for good
        store.rounds(sid)


def test_size_bound_evicts_least_recently_used(clock):
    store = SessionStore(StoreConfig(max_sessions=2), clock)
    a = store.create(seed=1)
    clock.now += 1
    b = store.create(seed=2)
    clock.now += 1
    store.seed(a)  # a is now more recent than b
    clock.now += 1
    c = store.create(seed=3)
    assert store.seed(a) == 1 and store.seed(c) == 3
    with pytest.raises(SessionNotFound):
        store.seed(b)


def test_purge_and_delete(clock):
    store = SessionStore(StoreConfig(ttl_s=10), clock)
    old = store.create(seed=1)
    clock.now += 11
    new = store.create(seed=2)  # creation purges the expired one
    with pytest.raises(SessionNotFound, match="unknown"):
        store.seed(old)
    store.delete(new)
    with pytest.raises(SessionNotFound):
        store.seed(new)
    assert store.purge_expired() == 0


def test_bounds_and_bad_input(clock):
    store = SessionStore(StoreConfig(max_rounds=1), clock)
    sid = store.create(seed=0)
    store.append_round(sid, "p", None, latents(0))
    with pytest.raises(ValueError, match="maximum of 1 rounds"):
        store.append_round(sid, "q", 0.5, latents(1))
    with pytest.raises(ValueError, match="cannot be stored"):
        store.append_round(sid, "q", 0.5, latents(1).double())
    for bad in (dict(ttl_s=0), dict(max_sessions=0), dict(max_rounds=1.5)):
        with pytest.raises(ValueError):
            StoreConfig(**bad)


@pytest.mark.parametrize("seed", [0, 7, 2**63 - 1, 2**63, 2**64 - 1])
def test_every_u64_seed_round_trips_through_a_restart(tmp_path, clock, seed):
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(StoreConfig(path=path), clock)
    sid = store.create(seed=seed)
    store.close()
    assert SessionStore(StoreConfig(path=path), clock).seed(sid) == seed


def test_seeds_are_stored_as_the_signed_integer_with_the_same_bits(tmp_path, clock):
    # Databases written before u64 seeds hold seeds below 2**63 as themselves: they must read back unchanged.
    path = tmp_path / "sessions.sqlite"
    store = SessionStore(StoreConfig(path=path), clock)
    ids = {seed: store.create(seed=seed) for seed in (5, 2**63 - 1, 2**63, 2**64 - 1)}
    store.close()
    with sqlite3.connect(path) as db:
        stored = dict(db.execute("SELECT id, seed FROM sessions").fetchall())
    assert [stored[ids[s]] for s in (5, 2**63 - 1, 2**63, 2**64 - 1)] == [5, 2**63 - 1, -2**63, -1]


@pytest.mark.parametrize("seed", [-1, 2**64, True, 1.0])
def test_seeds_outside_u64_are_refused(clock, seed):
    with pytest.raises(ValueError, match="seed"):
        SessionStore(StoreConfig(), clock).create(seed=seed)
