import json
from types import SimpleNamespace

import pytest
from PIL import Image

from ecdiff.search import ECDiffParams, Measurement
from ecdiff.search.objective import Timing
from ecdiff.search import evaluator as evaluator_module
from ecdiff.search.evaluator import TIMING_METHOD, PipelineEvaluator
from ecdiff.search.prompts import PromptItem
from ecdiff.strategies import StepKind


class DriftingMachine:
    """Fake `generate`: seconds = (cloud calls + 0.1 * other steps) x the machine's slowness, which
    moves to its next value whenever a cloud-only picture starts (this VM's speed drifts over
    seconds to minutes, so back-to-back pictures see the same speed, pictures far apart do not)."""

    def __init__(self, slowness):
        self.slowness, self.now = list(slowness), -1

    def __call__(self, pair, strategy, prompt, seed, num_steps):
        plan = strategy.plan(num_steps)
        if plan.count(StepKind.CLOUD) == num_steps:
            self.now += 1
        work = plan.count(StepKind.CLOUD) + 0.1 * (num_steps - plan.count(StepKind.CLOUD))
        return SimpleNamespace(image=Image.new("RGB", (16, 16), (seed * 40, 90, 200)),
                               latency_s=work * self.slowness[self.now])


@pytest.fixture()
def evaluator(monkeypatch):
    # The reference pictures run at slowness 1; the point's three prompts then at 3, 0.5 and 2.
    monkeypatch.setattr(evaluator_module, "generate", DriftingMachine([1.0, 1.0, 1.0, 3.0, 0.5, 2.0]))
    pair = SimpleNamespace(cache_key="fake-pair")
    return PipelineEvaluator(pair, [PromptItem("a", 0), PromptItem("b", 1), PromptItem("c", 2)], 50, progress=False)


def test_relative_latency_cancels_drift_between_prompts(evaluator):
    params = ECDiffParams(50, 7, 2, 0.3, 35)
    cloud_calls = params.strategy().plan(50).count(StepKind.CLOUD)
    m = evaluator.measure(params, None)
    work = cloud_calls + 0.1 * (50 - cloud_calls)
    # Each prompt's ratio is the pure workload ratio, whatever the slowness then: so is their median.
    # (Against the reference pictures' time instead it would be 2 * work / 50.)
    assert m.relative_latency == pytest.approx(work / 50)
    assert m.latency_s == pytest.approx(2.0 * work)  # the absolute median moved with the drift
    assert (m.ssim, m.cloud_calls, m.num_steps) == (1.0, cloud_calls, 50)


def test_a_given_timing_is_used_and_no_cloud_picture_is_generated(evaluator, monkeypatch):
    evaluator.cloud_reference(50)  # the reference pictures exist already, as in a search
    machine = evaluator_module.generate
    m = evaluator.measure(ECDiffParams(50, 7, 2, 0.4, 35), Timing(1.25, 0.42))
    assert (m.latency_s, m.relative_latency) == (1.25, 0.42)
    assert machine.now == 2  # no cloud-only picture started after the three reference ones


def test_cloud_reference_is_one_by_definition(evaluator):
    assert evaluator.cloud_reference(50) == Measurement(1.0, 50.0, 50, 50, 1.0)  # seconds: 50 calls at slowness 1


def test_fingerprint_names_the_timing_method(evaluator):
    assert json.loads(evaluator.fingerprint())["timing"] == TIMING_METHOD


@pytest.mark.parametrize("relative", [0.0, -0.5, float("nan"), float("inf")])
def test_measurement_rejects_a_bad_relative_latency(relative):
    with pytest.raises(ValueError, match="latencies"):
        Measurement(0.9, 1.0, 20, 50, relative)
