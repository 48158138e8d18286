import itertools

import pytest

from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD, PlanCounts, StepKind


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
        (dict(pre_steps=3, k=2, alpha=0.0, switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=1.5, switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=float("nan"), switch_step=10), "alpha"),
        (dict(pre_steps=3, k=2, alpha=True, switch_step=10), "alpha"),
        (dict(pre_steps=5, k=2, alpha=0.5, switch_step=4), "switch_step"),
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
