import json

from ecdiff.bench.quality import hybrid_cloud_steps
from ecdiff.bench.quality_report import quality_plot, search_frontier


def test_hybrid_settings_at_50_steps():
    assert hybrid_cloud_steps(10, 50) == 40 and hybrid_cloud_steps(25, 50) == 25
    assert hybrid_cloud_steps(10, 20) == 16 and hybrid_cloud_steps(25, 20) == 10


def test_search_frontier_keeps_only_undominated_points(tmp_path):
    points = [(1.0, 0.90), (2.0, 0.95), (1.5, 0.80), (3.0, 0.94), (0.5, 0.70), (2.0, 0.93)]
    path = tmp_path / "points.jsonl"
    path.write_text("".join(json.dumps({"measurement": {"latency_s": t, "ssim": q}}) + "\n" for t, q in points))
    assert search_frontier(path) == [(0.5, 0.70), (1.0, 0.90), (2.0, 0.95)]
    rows = [{"method": "cloud", "latency_s": 2.5, "ssim": 1.0}, {"method": "ecdiff", "latency_s": 1.2, "ssim": 0.97}]
    quality_plot(rows, tmp_path / "q.png", search_frontier(path))
    assert (tmp_path / "q.png").stat().st_size > 1000
