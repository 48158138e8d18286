import re

import pytest

from ecdiff.bench.capacity import BatchCurve, plan, simulate
from ecdiff.cli import main
from ecdiff.engine.config import EngineConfig

ENGINE = EngineConfig(max_batch=4, max_running=8)


def test_the_curve_interpolates_rescales_and_adds_the_requests_overhead():
    curve = BatchCurve.parse("1:10,4:16,8:32")
    assert curve.seconds(1) == pytest.approx(0.010) and curve.seconds(2) == pytest.approx(0.012)
    assert curve.seconds(16) == pytest.approx(0.064)  # beyond the last point: the last segment's slope
    assert BatchCurve.parse("1:10,4:16", unet_ms=5).seconds(4) == pytest.approx(0.008)  # shape kept
    assert BatchCurve(((1, 0.010), (4, 0.016)), request_overhead=0.001).seconds(4) == pytest.approx(0.020)
    for bad in ("", "2:10", "1:0", "1:10,1:12", "1-10"):
        with pytest.raises(ValueError):
            BatchCurve.parse(bad)


def test_one_request_alone_takes_its_calls_and_load_fills_batches():
    curve = BatchCurve.parse("1:10,4:16")
    alone = simulate(0.01, 1, 20, curve, ENGINE, requests=200)  # arrivals far apart: never batched
    assert alone.p50 == pytest.approx(0.2) and alone.mean_batch < 1.05
    busy = simulate(0.9 * curve.peak_rate(4, 20), 1, 20, curve, ENGINE, requests=2000)
    assert busy.mean_batch > 3 and busy.p95 > alone.p95


def test_the_plan_is_the_fewest_replicas_meeting_the_p95():
    curve = BatchCurve.parse("1:10,4:16")
    rate, target = 300.0, 0.3
    chosen = plan(rate, target, 20, curve, ENGINE, requests=2000)
    assert chosen is not None and chosen.p95 <= target
    stable = rate / curve.peak_rate(4, 20)  # fewer replicas than this cannot keep up at all
    assert chosen.replicas >= stable
    fewer = chosen.replicas - 1
    assert fewer < stable or simulate(rate, fewer, 20, curve, ENGINE, requests=2000).p95 > target
    assert plan(rate, 0.1, 20, curve, ENGINE, requests=2000) is None  # one request alone takes 0.2 s


def test_the_command_prints_its_assumptions_and_a_row_per_strategy(capsys):
    assert main(["bench", "capacity", "--rate", "50", "--p95", "5", "--curve", "1:40,8:100", "--requests", "500",
                 "--step-overhead-ms", "2"]) == 0
    out = capsys.readouterr().out
    assert "Assumptions:" in out and "given with --curve" in out and "1: 40.0 ms, 8: 100.0 ms" in out
    assert "2 ms per cloud-phase step" in out and re.search(r"EC-Diff \d+ / \d+, HybridSD \d+ / \d+", out)
    for label in ("EC-Diff", "HybridSD", "cloud-only"):
        assert f"| {label} |" in out
    assert main(["bench", "capacity", "--rate", "0", "--p95", "5"]) == 2
