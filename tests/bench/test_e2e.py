"""The bench's path through the services: requests it cannot make, and errors it reports."""

import pytest

from ecdiff.bench.e2e import LinkSettings, ServiceError, ThroughServices, request_options, served_placement
from ecdiff.images import decode_images
from ecdiff.bench.quality_runner import Method
from ecdiff.loading import load_pair
from ecdiff.preparation import prepare_run
from ecdiff.search.prompts import PromptItem
from ecdiff.strategies import ECDiff, HybridSD

ECDIFF = Method("ecdiff", ECDiff(2, 1, 0.5, 4), {"strategy": "ecdiff", "num_steps": 6, "pre_steps": 2, "k": 1,
                                                  "alpha": 0.5, "switch_step": 4, "rule": "paper"})


def test_requests_carry_the_methods_parameters_explicitly():
    assert request_options(ECDIFF, 6) == {"strategy": "ecdiff", "num_steps": 6, "transfer_dtype": "float32",
                                          "transfer_encoding": "raw",
                                          "params": {"pre_steps": 2, "k": 1, "alpha": 0.5, "switch_step": 4,
                                                     "rule": "paper"}}
    hybrid = Method("hybrid-25", HybridSD(3), {"strategy": "hybrid", "cloud_steps": 3})
    assert request_options(hybrid, 6)["params"] == {"cloud_steps": 3}


@pytest.mark.parametrize("method", [
    Method("euler", ECDiff(2, 1, 0.5, 4), ECDIFF.params, scheduler="euler"),
    Method("twice", ECDiff(2, 1, 0.5, 4, corrections=2), {**ECDIFF.params, "corrections": 2}),
])
def test_variants_the_services_do_not_run_are_refused(method):
    with pytest.raises(ValueError, match="own scheduler with one correction"):
        request_options(method, 6)


def test_a_refused_request_is_a_service_error_and_nothing_is_left_running(tmp_path):
    link = LinkSettings(service_threads=1)
    with ThroughServices(load_pair(tiny=True), 2000, link, log_dir=tmp_path) as through:  # above the services' max_steps
        with pytest.raises(ServiceError, match="INVALID_ARGUMENT"):
            through(Method("cloud", None, {"strategy": "cloud"}), PromptItem("a red circle", 1))
        processes = [service.proc for service in through.services]
        assert [service.role for service in through.services] == ["cloud", "edge"]
    assert through.services == [] and through.client is None
    assert all(proc.poll() is not None for proc in processes)  # both children stopped
    assert all("serving" in (tmp_path / f"e2e-{role}.log").read_text() for role in ("cloud", "edge"))


def test_the_services_run_the_pairs_guidance_and_placement(tmp_path):
    """A pair at another guidance than its models' own is measured end to end too: the services get it
    (with the device and dtype), and the picture is the in-process one."""
    pair = load_pair(tiny=True, guidance=5.5)
    assert served_placement(pair) == ["--guidance", "5.5", "--device", "cpu", "--dtype", "float32"]
    item = PromptItem("a small red circle at the top left", 3)
    with ThroughServices(pair, 6, LinkSettings(service_threads=1), log_dir=tmp_path) as through:
        served = through(ECDIFF, item).image
    local = prepare_run(ECDIFF.strategy, prompts=item.prompt, num_steps=6, guidance=5.5, cloud=pair.cloud,
                        edge=pair.edge, seeds=item.seed).sample().latents
    assert served.tobytes() == decode_images(pair.edge, local)[0].tobytes()


def test_service_threads_default_to_half_the_cores(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    assert LinkSettings().service_threads == 8 and LinkSettings(service_threads=3).service_threads == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert LinkSettings().service_threads == 1
    with pytest.raises(ValueError, match="service threads must be >= 0"):
        LinkSettings(service_threads=-1)
