import pytest

from ecdiff.services.link import Link, LinkConfig


def test_unshaped_link_delivers_at_once():
    link = Link(LinkConfig())
    assert link.arrival(10**9, 5.0) == 5.0


def test_bandwidth_and_latency():
    # 18.88 Mbps: 1 MB takes 8e6 / 18.88e6 s to serialise, then 20 ms of latency.
    link = Link(LinkConfig(bandwidth_mbps=18.88, latency_ms=20))
    assert link.arrival(1_000_000, 1.0) == pytest.approx(1.0 + 8e6 / 18.88e6 + 0.020)


def test_messages_queue_behind_each_other_but_latency_overlaps():
    link = Link(LinkConfig(bandwidth_mbps=8, latency_ms=100))  # 1 MB/s
    first = link.arrival(500_000, 0.0)  # serialised during [0, 0.5]
    second = link.arrival(500_000, 0.1)  # waits for the link: [0.5, 1.0]
    third = link.arrival(1000, 3.0)  # link idle again
    assert (first, second) == (pytest.approx(0.6), pytest.approx(1.1))
    assert third == pytest.approx(3.0 + 0.001 + 0.1)


@pytest.mark.parametrize("kwargs", [{"bandwidth_mbps": -1}, {"latency_ms": float("nan")}, {"bandwidth_mbps": float("inf")}])
def test_bad_link_config(kwargs):
    with pytest.raises(ValueError):
        LinkConfig(**kwargs)
