import itertools

import pytest

from ecdiff.strategies import extrapolation_fit, CloudOnly, ECDiff, EdgeOnly, HybridSD, PlanCounts, StepKind


def expected_counts(T, p, k, s):
    # Written from the rule "real call when i < p or (i - p) mod (k + 1) == k" counted in closed form:
    # among the s - p cloud-phase steps after the pre-steps, every (k+1)-th is a real call.
    real_after_p = (s - p) // (k + 1)
    return PlanCounts(cloud=p + real_after_p, approx=(s - p) - real_after_p, edge=T - s)


def test_paper_example():
    plan = ECDiff(pre_steps=7, k=2, alpha=0.5, switch_step=37).plan(50)
    assert PlanCounts.of(plan) == PlanCounts(cloud=17, approx=20, edge=13)
    assert plan[:7] == (StepKind.CLOUD,) * 7
    assert plan[7:10] == (StepKind.APPROX, StepKind.APPROX, StepKind.CLOUD)
    assert plan[37:] == (StepKind.EDGE,) * 13


@pytest.mark.parametrize("T", [2, 3, 10, 25, 50, 51])
def test_counts_over_many_parameters(T):
    for p, k in itertools.product(range(2, T + 1), range(0, 7)):
        for s in range(p, T + 1):
            plan = ECDiff(pre_steps=p, k=k, alpha=0.5, switch_step=s).plan(T)
            assert len(plan) == T
            assert PlanCounts.of(plan) == expected_counts(T, p, k, s), (T, p, k, s)


def test_k_zero_is_hybrid():
    for s in range(2, 51):
        assert ECDiff(pre_steps=2, k=0, alpha=1.0, switch_step=s).plan(50) == HybridSD(s).plan(50)


def test_baselines():
    assert CloudOnly().plan(4) == (StepKind.CLOUD,) * 4
    assert EdgeOnly().plan(3) == (StepKind.EDGE,) * 3
    assert HybridSD(2).plan(4) == (StepKind.CLOUD, StepKind.CLOUD, StepKind.EDGE, StepKind.EDGE)
    assert HybridSD(0).plan(2) == EdgeOnly().plan(2)
    assert HybridSD(5).plan(5) == CloudOnly().plan(5)
    assert CloudOnly().handoff_step(5) == 5 and EdgeOnly().handoff_step(5) == 0
    assert str(StepKind.APPROX) == "approx" and StepKind("edge") is StepKind.EDGE


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(pre_steps=1, k=2, alpha=0.5, switch_step=10), "pre_steps"),
        (dict(pre_steps=2.0, k=2, alpha=0.5, switch_step=10), "pre_steps"),
        (dict(pre_steps=3, k=-1, alpha=0.5, switch_step=10), "k must"),
        (dict(pre_steps=3, k=2, alpha=-0.1, switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=1.5, switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=float("nan"), switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=True, switch_step=10), "alpha"),
        (dict(pre_steps=5, k=2, alpha=0.5, switch_step=4), "switch_step"),
        (dict(pre_steps=3, k=2, alpha=0.5, switch_step=10, rule="cubic", beta=0.5), "unknown extrapolation rule"),
        (dict(pre_steps=3, k=2, alpha=0.5, switch_step=10, rule="slope"), "needs beta"),
        (dict(pre_steps=3, k=2, alpha=0.5, switch_step=10, rule="slope", beta=1.5), "beta"),
        (dict(pre_steps=3, k=2, alpha=0.5, switch_step=10, rule="lsq", beta=float("inf")), "beta"),
        (dict(pre_steps=3, k=2, alpha=0.5, switch_step=10, rule="paper", beta=-1.0), "beta"),
    ],
)
def test_ecdiff_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ECDiff(**kwargs)


@pytest.mark.parametrize("num_steps", [0, -3, 2.5, True, None])
def test_num_steps_validation(num_steps):
    for strategy in (CloudOnly(), EdgeOnly(), HybridSD(0), ECDiff(2, 1, 0.5, 2)):
        with pytest.raises(ValueError, match="num_steps"):
            strategy.plan(num_steps)


def test_switch_beyond_num_steps():
    with pytest.raises(ValueError, match="switch_step"):
        ECDiff(pre_steps=2, k=1, alpha=0.5, switch_step=40).plan(30)
    with pytest.raises(ValueError, match="cloud_steps"):
        HybridSD(31).plan(30)
    with pytest.raises(ValueError, match="cloud_steps"):
        HybridSD(-1)


def test_correcting_twice():
    plan = ECDiff(pre_steps=3, k=2, alpha=0.5, switch_step=11, corrections=2).plan(12)
    C, A, E = StepKind.CLOUD, StepKind.APPROX, StepKind.EDGE
    assert plan == (C, C, C, A, A, C, C, A, A, C, C, E)
    with pytest.raises(ValueError, match="corrections"):
        ECDiff(pre_steps=3, k=2, alpha=0.5, switch_step=11, corrections=0)


def test_step_rules_carry_the_gradient_rule():
    rules = ECDiff(pre_steps=3, k=2, alpha=0.4, switch_step=9).step_rules(10)
    assert tuple(r.kind for r in rules) == ECDiff(3, 2, 0.4, 9).plan(10)
    # Real calls at 0, 1, 2, 5, 8 (approximated 3, 4, 6, 7); the gradient starts at p - 1 = 2 and is
    # smoothed after 5; none after 8, the last real call with no approximated step ahead.
    assert [r.gradient for r in rules] == [None, None, 1.0, None, None, 0.4, None, None, None, None]
    for strategy in (CloudOnly(), EdgeOnly(), HybridSD(4)):
        assert all(r.gradient is None for r in strategy.step_rules(10))


@pytest.mark.parametrize("rule, degree", [("slope", 1), ("lsq", 1), ("quadratic", 2)])
@pytest.mark.parametrize("beta", [0.0, 0.4, 1.0])
def test_fits_extrapolate_polynomials_of_their_degree_exactly(rule, degree, beta):
    # Noises on a polynomial of the rule's degree, at unevenly spaced real calls (most recent first):
    # the fit's approximated noises are e_0 + beta * (poly(t_0 + j) - e_0), j = 1..5.
    steps = (11, 8, 6)
    coefficients = (0.7, -0.3, 0.05 if degree == 2 else 0.0)
    poly = lambda t: sum(c * t**n for n, c in enumerate(coefficients))  # noqa: E731
    noises = [poly(t) for t in steps]
    fit = extrapolation_fit(rule, steps, beta)
    delta = sum(w * e for w, e in zip(fit.slope, noises))
    curvature = 0.0 if fit.curvature is None else sum(w * e for w, e in zip(fit.curvature, noises))
    eps = noises[0]
    for j in range(1, 6):
        delta += curvature
        eps += delta
        assert eps == pytest.approx(noises[0] + beta * (poly(steps[0] + j) - noises[0]), abs=1e-12)


def test_lsq_is_a_least_squares_line_and_quadratic_needs_three_points():
    # Noises off any line: lsq's slope is the regression slope, not the last two's.
    fit = extrapolation_fit("lsq", (4, 3, 2), 1.0)
    assert sum(w * e for w, e in zip(fit.slope, (1.0, 5.0, 0.0))) == pytest.approx(0.5)
    assert extrapolation_fit("quadratic", (5, 4), 0.5) == extrapolation_fit("slope", (5, 4), 0.5)
    assert extrapolation_fit("slope", (9, 6, 5), 0.6).slope == pytest.approx((0.2, -0.2))
    with pytest.raises(ValueError, match="at least two"):
        extrapolation_fit("slope", (3,), 1.0)
    with pytest.raises(ValueError, match="no fit"):
        extrapolation_fit("paper", (3, 2), 1.0)


def test_step_rules_of_the_other_rules_fit_the_real_calls_so_far():
    strategy = ECDiff(pre_steps=3, k=2, alpha=0.4, switch_step=9, rule="quadratic", beta=0.5)
    rules = strategy.step_rules(10)
    assert tuple(r.kind for r in rules) == strategy.plan(10)
    # Real calls at 0, 1, 2, 5, 8: the fit is formed at 2 (over 2, 1, 0) and 5 (over 5, 2, 1).
    assert [i for i, r in enumerate(rules) if r.gradient is not None] == [2, 5]
    assert rules[2].gradient == extrapolation_fit("quadratic", (2, 1, 0), 0.5)
    assert rules[5].gradient == extrapolation_fit("quadratic", (5, 2, 1), 0.5)
    # the paper's rule with alpha 0 is allowed: after the first correction the last real noise is reused
    assert [r.gradient for r in ECDiff(3, 2, 0.0, 9).step_rules(10)][2:6] == [1.0, None, None, 0.0]
