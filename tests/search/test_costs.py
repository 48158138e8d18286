import math

import pytest

from ecdiff.search.costs import StepCosts, TimedPicture, fit_step_costs
from ecdiff.strategies import PlanCounts, StepKind


def _picture(cloud, approx, edge, per_step, overhead):
    """A picture whose steps took exactly `per_step` seconds per kind, plus `overhead`."""
    counts = PlanCounts(cloud, approx, edge)
    seconds = {kind: getattr(counts, kind.value) * per_step[kind] for kind in StepKind}
    return TimedPicture(overhead + sum(seconds.values()), counts, seconds)


FAST = {StepKind.CLOUD: 0.07, StepKind.APPROX: 0.001, StepKind.EDGE: 0.02}
SLOW = {kind: 3 * s for kind, s in FAST.items()}  # the machine three times slower for a while


def test_fit_takes_medians_per_step_and_of_the_overhead():
    cloud_only = [_picture(50, 0, 0, FAST, 0.1), _picture(50, 0, 0, FAST, 0.1), _picture(50, 0, 0, SLOW, 0.3)]
    mixed = [_picture(6, 19, 25, FAST, 0.15), _picture(6, 19, 25, SLOW, 0.45), _picture(6, 19, 25, FAST, 0.15)]
    costs = fit_step_costs(cloud_only, mixed)
    # The slow third of the pictures is outvoted on every cost; exactly, not approximately: medians.
    assert costs.cloud_s == pytest.approx(0.07) and costs.approx_s == pytest.approx(0.001)
    assert costs.edge_s == pytest.approx(0.02)
    assert costs.cloud_only_overhead_s == pytest.approx(0.1) and costs.collaborative_overhead_s == pytest.approx(0.15)


def test_seconds_of_a_plan():
    costs = StepCosts(cloud_s=0.07, approx_s=0.001, edge_s=0.02, cloud_only_overhead_s=0.1, collaborative_overhead_s=0.15)
    assert costs.seconds(PlanCounts(50, 0, 0)) == pytest.approx(0.1 + 3.5)
    assert costs.seconds(PlanCounts(16, 20, 14)) == pytest.approx(0.15 + 16 * 0.07 + 20 * 0.001 + 14 * 0.02)
    assert costs.seconds(PlanCounts(30, 20, 0)) == pytest.approx(0.1 + 30 * 0.07 + 20 * 0.001)  # never handed off
    assert StepCosts.from_dict(costs.as_dict()) == costs


def test_fit_refuses_pictures_that_cannot_measure_every_kind():
    cloud_only = [_picture(50, 0, 0, FAST, 0.1)]
    with pytest.raises(ValueError, match="collaborative"):
        fit_step_costs(cloud_only, [_picture(25, 0, 25, FAST, 0.1)])  # no approximated step
    with pytest.raises(ValueError, match="cloud-only"):
        fit_step_costs([_picture(40, 0, 10, FAST, 0.1)], [_picture(6, 19, 25, FAST, 0.15)])
    with pytest.raises(ValueError, match="at least one"):
        fit_step_costs([], [_picture(6, 19, 25, FAST, 0.15)])


@pytest.mark.parametrize("field,value", [("cloud_s", 0.0), ("edge_s", -0.1), ("approx_s", math.nan),
                                         ("collaborative_overhead_s", math.inf)])
def test_costs_reject_bad_values(field, value):
    values = dict(cloud_s=0.07, approx_s=0.001, edge_s=0.02, cloud_only_overhead_s=0.1, collaborative_overhead_s=0.15)
    with pytest.raises(ValueError, match=field):
        StepCosts(**{**values, field: value})
