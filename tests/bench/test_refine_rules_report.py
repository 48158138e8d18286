"""The refinement's choice and tables of `ecdiff bench refine-rules`, on made-up measurements."""

from ecdiff.bench.refine_rules_report import build_results, choose, tables


def row(name, calls, ssim, fidelity):
    return {"candidate": name, "calls": calls, "ssim": ssim, "fidelity": fidelity}


def test_the_choice_saves_calls_at_the_baselines_ssim_and_fidelity():
    base = row("paper:0.3 k1 p3", 21, 0.998, 100.0)
    rows = [base, row("a", 15, 0.999, 100.0), row("b", 12, 0.99, 100.0), row("c", 12, 0.999, 80.0),
            row("d", 21, 0.9995, 100.0), row("e", 15, 0.9985, 100.0)]
    assert choose(rows, base["candidate"])["candidate"] == "a"  # b: lower SSIM, c: lower fidelity
    assert choose([base, rows[3], rows[4]], base["candidate"]) is base  # equal calls: no change without a saving
    assert choose(rows, base["candidate"], ssim_tolerance=0.01)["candidate"] == "b"  # 0.99 >= 0.998 - 0.01


def entry(strength, exact_calls, candidates):
    return {"strength": strength, "strength_source": "predictor", "exact": {"calls": exact_calls, "fidelity": 100.0,
            "soft": 99.0}, "candidates": {name: dict(zip(("ssim", "fidelity", "soft", "calls", "approx"), values))
                                          for name, values in candidates.items()}}


def test_results_and_tables():
    entries = [entry(0.8, 40, {"paper:0.3 k1 p3": (0.998, 100.0, 99.0, 21, 19), "slope:0 k2 p3": (0.999, 100.0, 99.1, 15, 25)}),
               entry(0.6, 30, {"paper:0.3 k1 p3": (0.996, 80.0, 90.0, 16, 14), "slope:0 k2 p3": (0.997, 80.0, 90.0, 12, 18)})]
    run = {"models": "m", "sessions_file": "f", "sessions": 2, "steps": 50, "preview_steps": 25,
           "preview_strength": "predictor", "strength": "predictor"}
    results = build_results(entries, ["paper:0.3 k1 p3", "slope:0 k2 p3"], run, {})
    assert (results["baseline"], results["chosen"]) == ("paper:0.3 k1 p3", "slope:0 k2 p3")
    chosen = results["candidates"][1]
    assert (chosen["calls"], chosen["approx"], chosen["fidelity"], chosen["min_ssim"]) == (13.5, 21.5, 90.0, 0.997)
    assert chosen["cost"] == 27 / 70 and results["exact"]["calls"] == 35
    assert results["strengths"] == {"mean": 0.7, "counts": {"0.6": 1, "0.8": 1}, "sources": {"predictor": 2}}
    md = tables(results)
    assert "| **chosen: slope:0 k2 p3** | 13.50 | 21.50 | 0.386 | +5.00 | 0.9980 | 0.9970 | 90.0 | 94.55 |" in md
    assert "| best SSIM at k 1: paper:0.3 k1 p3 | 18.50 |" in md
    assert "| fewest calls at SSIM >= baseline - 0.001: slope:0 k2 p3 | 13.50 |" in md
