"""The refinement's choice and tables of `ecdiff bench refine-rules`, on made-up measurements."""

from ecdiff.bench.refine_rules_report import build_results, choose, tables

BASE = "paper:0.3 k1 p3"


def row(name, calls, ssim, fidelity):
    return {"candidate": name, "calls": calls, "ssim": ssim, "fidelity": fidelity}


def test_the_choice_saves_calls_at_the_baselines_ssim_and_fidelity():
    base = row(BASE, 21, 0.998, 100.0)
    rows = [base, row("a", 15, 0.999, 100.0), row("b", 12, 0.99, 100.0), row("c", 12, 0.999, 80.0),
            row("d", 21, 0.9995, 100.0), row("e", 15, 0.9985, 100.0)]
    assert choose([rows], BASE) == "a"  # b: lower SSIM, c: lower fidelity; a before e: higher SSIM
    assert choose([[base, rows[3], rows[4]]], BASE) == BASE  # equal calls: no change without a saving
    assert choose([rows], BASE, ssim_tolerance=0.01) == "b"  # 0.99 >= 0.998 - 0.01
    # one default for every strength: a loses at the second strength, c at the first, e holds at both
    other = [row(BASE, 14, 0.997, 90.0), row("a", 14, 0.996, 90.0), row("b", 10, 0.99, 90.0),
             row("c", 10, 0.999, 90.0), row("d", 14, 0.998, 90.0), row("e", 13, 0.997, 90.0)]
    assert choose([rows, other], BASE) == "e" and choose([other], BASE) == "c"


def entry(strength, exact_calls, candidates):
    return {"strength": strength, "strength_source": "predictor", "exact": {"calls": exact_calls, "fidelity": 100.0,
            "soft": 99.0}, "candidates": {name: dict(zip(("ssim", "fidelity", "soft", "calls", "approx"), values))
                                          for name, values in candidates.items()}}


def test_results_and_tables():
    at_predictor = [entry(0.8, 40, {BASE: (0.998, 100.0, 99.0, 21, 19), "slope:0 k2 p3": (0.999, 100.0, 99.1, 15, 25)}),
                    entry(0.6, 30, {BASE: (0.996, 80.0, 90.0, 16, 14), "slope:0 k2 p3": (0.997, 80.0, 90.0, 12, 18)})]
    at_half = [entry(0.5, 25, {BASE: (0.997, 100.0, 99.0, 14, 11), "slope:0 k2 p3": (0.990, 100.0, 99.0, 11, 14)})] * 2
    run = {"models": "m", "sessions_file": "f", "sessions": 2, "steps": 50, "preview_steps": 25,
           "preview_strength": "predictor"}
    results = build_results({"predictor": at_predictor, "0.5": at_half}, [BASE, "slope:0 k2 p3"], run, {})
    predictor = results["strengths"]["predictor"]
    assert (results["baseline"], predictor["chosen"], results["strengths"]["0.5"]["chosen"]) == (
        BASE, "slope:0 k2 p3", BASE)
    assert results["chosen"] == BASE  # slope:0 k2 p3 loses SSIM at 0.5
    chosen = predictor["candidates"][1]
    assert (chosen["calls"], chosen["approx"], chosen["fidelity"], chosen["min_ssim"]) == (13.5, 21.5, 90.0, 0.997)
    assert chosen["cost"] == 27 / 70 and predictor["exact"]["calls"] == 35
    assert predictor["strengths"] == {"mean": 0.7, "counts": {"0.6": 1, "0.8": 1}, "sources": {"predictor": 2}}
    md = tables(results)
    assert f"| baseline (shipped): {BASE} | 18.50 / 0.9970 / 90.0 | 14.00 / 0.9970 / 100.0 |" in md
    assert f"| **chosen: {BASE}** |" in md and "| choice at strength predictor alone: slope:0 k2 p3 | 13.50 / " in md
    assert "| choice at this strength alone: slope:0 k2 p3 | 13.50 | 21.50 | 0.386 | +5.00 | 0.9980 | 0.9970 | 90.0 | 94.55 |" in md
    assert f"| best SSIM at k 1: {BASE} | 18.50 |" in md
    assert "| fewest calls at SSIM >= baseline - 0.001: slope:0 k2 p3 | 13.50 |" in md
    assert md.count("## Refinement strength") == 2
