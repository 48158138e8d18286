import pytest

from ecdiff.search import SearchConfig
from ecdiff.search.greedy import search_k, two_stage_search, walk


PAPER_ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the paper's grid, which these walks were written on


def table_score(k_values=None, alpha_values=None, s_values=None):
    """Objective = k table + alpha table + s table, each term only where the stage varies it."""
    seen = []

    def score(p):
        seen.append((p.k, p.alpha, p.switch_step))
        return (k_values or {}).get(p.k, 0.0) + (alpha_values or {}).get(p.alpha, 0.0) + (s_values or {}).get(p.switch_step, 0.0)

    return score, seen


def decisions(path, stage):
    return [(step.params["k"] if stage == "k" else step.params["alpha"] if stage == "alpha" else step.params["switch_step"], step.decision)
            for step in path if step.stage == stage]


def test_k_scan_stops_after_three_non_improving():
    score, seen = table_score(k_values={1: 0.5, 2: 0.7, 3: 0.6, 4: 0.65, 5: 0.69, 6: 0.9})
    path = []
    k, j = search_k(SearchConfig(k_grid=(1, 2, 3, 4, 5, 6)), score, path)
    assert (k, j) == (2, 0.7)
    assert [s[0] for s in seen] == [1, 2, 3, 4, 5]  # k = 6 is never tried
    assert decisions(path, "k") == [(1, "start"), (2, "better"), (3, "worse"), (4, "worse"), (5, "worse"), (5, "stop: 3 non-improving k")]
    assert {s[1:] for s in seen} == {(0.5, 30)}  # stage 1 measures at alpha_start and s' = 30


def test_k_scan_patience_resets_on_improvement():
    # Without the reset, k = 2, 3 and 5 would be three misses and k = 6 would never be tried.
    score, seen = table_score(k_values={1: 0.5, 2: 0.4, 3: 0.45, 4: 0.6, 5: 0.1, 6: 0.2})
    k, _ = search_k(SearchConfig(k_grid=(1, 2, 3, 4, 5, 6)), score, [])
    assert k == 4 and [s[0] for s in seen] == [1, 2, 3, 4, 5, 6]


def test_alpha_reverses_on_first_worse_and_stops_at_grid_end():
    values = {a: -abs(a - 0.3) for a in PAPER_ALPHAS}
    path = []
    best, j = walk("alpha", PAPER_ALPHAS, 0.5, 3, 0.0, lambda a: (_P(a), values[a]), path)
    assert best == 0.3 and j == pytest.approx(0.0)
    assert [(s.params["alpha"], s.decision) for s in path] == [
        (0.5, "start"), (0.6, "worse"), (0.6, "reverse"), (0.4, "better"), (0.3, "better"),
        (0.2, "worse"), (0.1, "worse"), (0.1, "stop: end of grid"),
    ]


def test_walk_crosses_a_dip_without_reversing_after_moving():
    values = {35: 0.5, 36: 0.6, 37: 0.55, 38: 0.58, 39: 0.7, 40: 0.65, 34: 9.0}
    grid = tuple(range(30, 41))
    path = []
    best, _ = walk("s", grid, 35, 3, 0.0, lambda s: (_P(s), values.get(s, 0.0)), path)
    assert best == 39
    assert [(s.params["alpha"], s.decision) for s in path] == [
        (35, "start"), (36, "better"), (37, "worse"), (38, "worse"), (39, "better"), (40, "worse"), (40, "stop: end of grid"),
    ]  # 34 (better than everything) is never visited: the walk only reverses before it has moved


def test_walk_stops_after_patience_worse_values():
    values = {35: 0.5, 36: 0.6, 37: 0.55, 38: 0.58, 39: 0.7}
    path = []
    best, _ = walk("s", tuple(range(30, 41)), 35, 2, 0.0, lambda s: (_P(s), values.get(s, 0.0)), path)
    assert best == 36 and path[-1].decision == "stop: 2 worse values" and path[-1].params["alpha"] == 38


def test_walk_reverse_counts_toward_patience_and_ties_are_worse():
    # start 0.5; 0.6 ties (worse), reverse; 0.4 ties, 0.3 ties -> three consecutive non-improving values.
    values = {0.5: 1.0, 0.6: 1.0, 0.4: 1.0, 0.3: 1.0, 0.2: 5.0}
    path = []
    best, _ = walk("alpha", PAPER_ALPHAS, 0.5, 3, 0.0, lambda a: (_P(a), values.get(a, 0.0)), path)
    assert best == 0.5 and path[-1].decision == "stop: 3 worse values"
    assert [s.params["alpha"] for s in path if s.objective is not None] == [0.5, 0.6, 0.4, 0.3]


def test_min_improvement_threshold():
    values = {0.5: 1.0, 0.6: 1.0005, 0.7: 1.0006, 0.4: 0.0, 0.3: 0.0, 0.2: 0.0}
    best, _ = walk("alpha", PAPER_ALPHAS, 0.5, 3, 0.001, lambda a: (_P(a), values.get(a, 0.0)), [])
    assert best == 0.5


def test_walk_at_grid_edge_start_reverses():
    values = {0.9: 0.0, 0.8: 1.0, 0.7: 2.0, 0.6: 1.5}
    path = []
    best, _ = walk("alpha", PAPER_ALPHAS, 0.9, 3, 0.0, lambda a: (_P(a), values.get(a, -1.0)), path)
    assert best == 0.7
    assert [s.decision for s in path][:2] == ["start", "reverse: end of grid"]


def test_two_stage_uses_stage1_result_in_stage2():
    score, seen = table_score(
        k_values={1: 0.1, 2: 0.3, 3: 0.2, 4: 0.2, 5: 0.2},
        alpha_values={0.5: 0.0, 0.6: 0.1, 0.7: 0.2, 0.8: 0.15},
        s_values={35: 0.0, 36: -0.1, 34: 0.05, 33: 0.1, 32: 0.08},
    )
    outcome = two_stage_search(SearchConfig(rules=("paper",), stage1_rounds=1), score)
    best = outcome.best
    assert (best.k, best.alpha, best.switch_step, best.pre_steps, best.num_steps) == (2, 0.7, 33, 7, 50)
    assert outcome.objective == pytest.approx(0.3 + 0.2 + 0.1)
    stage2 = [s for s in seen if s[2] != 30]
    assert stage2 and all(s[:2] == (2, 0.7) for s in stage2)
    assert [s.stage for s in outcome.path if s.decision == "start"] == ["k", "alpha", "rule", "s"]


def test_stage1_compares_the_rules_each_with_its_own_k_and_damping():
    # The paper's rule is best at k 2 (alpha walked), slope at k 4 with beta 0.1 and is the best
    # of all; lsq never beats the paper. Stage 2 walks s with slope's (k, beta).
    def score(p):
        if p.rule == "paper":
            return {1: 0.1, 2: 0.3}.get(p.k, 0.0) + (0.05 if p.alpha == 0.4 else 0.0) - 0.001 * abs(p.switch_step - 30)
        if p.rule == "slope":
            return {3: 0.3, 4: 0.4}.get(p.k, 0.0) + 0.1 * (1 - p.beta) - 0.001 * abs(p.switch_step - 31)
        return 0.2

    outcome = two_stage_search(SearchConfig(rules=("paper", "slope", "lsq")), score)
    best = outcome.best
    assert (best.rule, best.k, best.beta, best.switch_step) == ("slope", 4, 0.0, 31)
    rules = [(step.params["rule"], step.params["k"], step.decision) for step in outcome.path if step.stage == "rule"]
    assert rules == [("paper", 2, "start"), ("slope", 4, "better"), ("lsq", 1, "worse")]
    betas = [step.params["beta"] for step in outcome.path if step.stage == "beta" and step.params["rule"] == "slope"]
    assert betas[0] == 0.5 and 0.0 in betas
    # each rule's own damping is walked: alpha for the paper's rule, beta for the others
    assert {step.params["rule"] for step in outcome.path if step.stage == "alpha"} == {"paper"}
    assert {step.params["rule"] for step in outcome.path if step.stage == "beta"} == {"slope", "lsq"}


class _P:
    """Stand-in point for walk tests: only `as_dict` is used, every field shows the walked value."""

    def __init__(self, value):
        self.value = value

    def as_dict(self):
        return {"alpha": self.value}


def test_the_k_scan_is_repeated_at_the_damping_found():
    # At the start alpha 0.5 long runs look bad and k 2 wins; the walk then goes down to alpha 0.0,
    # at which k 4 is best: the second scan moves k to 4, the walk from 0.0 there stays, and the
    # third scan (at 0.0) keeps k 4 and ends the rounds. With one round (the paper's) k stays 2.
    def score(p):
        long_runs_ok = p.alpha <= 0.1
        return {2: 0.5, 4: 0.8 if long_runs_ok else 0.1}.get(p.k, 0.0) + (0.5 - p.alpha) * 0.1

    outcome = two_stage_search(SearchConfig(rules=("paper",)), score)
    assert (outcome.best.k, outcome.best.alpha) == (4, 0.0)
    scans = [step.params["alpha"] for step in outcome.path if step.stage == "k" and step.decision == "start"]
    assert scans == [0.5, 0.0, 0.0]
    one_round = two_stage_search(SearchConfig(rules=("paper",), stage1_rounds=1), score)
    assert (one_round.best.k, one_round.best.alpha) == (2, 0.0)
