"""The bench's path through the services: requests it cannot make, and errors it reports."""

import pytest

from ecdiff.bench.e2e import LinkSettings, ServiceError, ThroughServices, request_options
from ecdiff.bench.quality_runner import Method
from ecdiff.loading import load_pair
from ecdiff.search.prompts import PromptItem
from ecdiff.strategies import ECDiff, HybridSD

ECDIFF = Method("ecdiff", ECDiff(2, 1, 0.5, 4), {"strategy": "ecdiff", "num_steps": 6, "pre_steps": 2, "k": 1,
                                                  "alpha": 0.5, "switch_step": 4})


def test_requests_carry_the_methods_parameters_explicitly():
    assert request_options(ECDIFF, 6) == {"strategy": "ecdiff", "num_steps": 6, "transfer_dtype": "float32",
                                          "params": {"pre_steps": 2, "k": 1, "alpha": 0.5, "switch_step": 4}}
    hybrid = Method("hybrid-25", HybridSD(3), {"strategy": "hybrid", "cloud_steps": 3})
    assert request_options(hybrid, 6)["params"] == {"cloud_steps": 3}


@pytest.mark.parametrize("method", [
    Method("euler", ECDiff(2, 1, 0.5, 4), ECDIFF.params, scheduler="euler"),
    Method("twice", ECDiff(2, 1, 0.5, 4, corrections=2), {**ECDIFF.params, "corrections": 2}),
])
def test_variants_the_services_do_not_run_are_refused(method):
    with pytest.raises(ValueError, match="DDIM with one correction"):
        request_options(method, 6)


def test_a_refused_request_is_a_service_error_and_nothing_is_left_running():
    with ThroughServices(load_pair(tiny=True), 2000, LinkSettings()) as through:  # above the services' max_steps
        with pytest.raises(ServiceError, match="INVALID_ARGUMENT"):
            through(Method("cloud", None, {"strategy": "cloud"}), PromptItem("a red circle", 1))
        assert through.services is not None
    assert through.services is None and through.client is None
