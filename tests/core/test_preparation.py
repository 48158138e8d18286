import pytest
import torch

from ecdiff.conditioning import Conditioning
from ecdiff.conventions import initial_latents
from ecdiff.diffusionx.rounds import round_noise
from ecdiff.img2img import img2img_start_step
from ecdiff.preparation import Img2ImgStart, prepare_run
from ecdiff.sampling import ApproxRun, SamplerState
from ecdiff.schedules import fresh_scheduler
from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD, StepKind
from ecdiff.tiny_models import tiny_pipelines

PROMPTS = ["a small red circle at the top left on a white background",
           "a large blue square in the middle on a black background"]


@pytest.fixture(scope="module")
def pipes():
    return tiny_pipelines(seed=0)


def test_a_run_owns_its_scheduler_and_starts_from_the_convention(pipes):
    cloud, edge = pipes
    run = prepare_run(ECDiff(2, 2, 0.5, 6), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, edge=edge,
                      seeds=5)
    assert run.scheduler is not cloud.scheduler and cloud.scheduler.num_inference_steps is None
    assert torch.equal(run.latents, initial_latents(5, (1, 4, 8, 8), fresh_scheduler(cloud), num_steps=8))
    assert run.cloud is not None and run.edge is not None and run.start_step == 0


def test_only_the_models_still_ahead_are_encoded(pipes):
    cloud, edge = pipes
    handoff = torch.zeros(1, 4, 8, 8)
    run = prepare_run(HybridSD(3), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, edge=edge,
                      latents=handoff, start_step=3)
    assert run.cloud is None and run.edge is not None
    assert prepare_run(EdgeOnly(), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, edge=edge,
                       seeds=1).cloud is None


def test_exactly_one_start(pipes):
    cloud, _ = pipes
    common = dict(prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud)
    with pytest.raises(ValueError, match="exactly one start"):
        prepare_run(CloudOnly(), **common)
    with pytest.raises(ValueError, match="exactly one start"):
        prepare_run(CloudOnly(), seeds=1, latents=torch.zeros(1, 4, 8, 8), **common)
    with pytest.raises(ValueError, match="2 seeds for 1 prompts"):
        prepare_run(CloudOnly(), seeds=[1, 2], **common)
    with pytest.raises(ValueError, match="cloud or an edge"):
        prepare_run(CloudOnly(), prompts="x", num_steps=8, guidance=3.0, seeds=1)


def test_img2img_starts_at_the_strengths_step(pipes):
    _, edge = pipes
    init, noise = torch.randn(1, 4, 8, 8), round_noise(3, 1, (1, 4, 8, 8))
    run = prepare_run(EdgeOnly(), prompts=PROMPTS[0], num_steps=10, guidance=3.0, edge=edge,
                      img2img=Img2ImgStart(init, noise, 0.35))
    assert run.start_step == img2img_start_step(10, 0.35) == 7
    result = run.sample()
    assert result.edge_calls == 3


def test_two_runs_share_one_batched_model_call_per_step(pipes):
    """What a batching engine does: runs at different steps (one joins two steps later), one UNet call
    for every pending model call, per-sample timesteps and conditioning; each ends where it ends alone."""
    cloud, _ = pipes
    runs = [prepare_run(ECDiff(2, 1, 0.5, 8), prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud, seeds=11),
            prepare_run(CloudOnly(), prompts=PROMPTS[1], num_steps=8, guidance=1.0, cloud=cloud, seeds=12)]
    alone = [run.sample().latents for run in runs]
    requests = [run.sampler().request(run.initial_state()) for run in runs]
    unet_calls, joined = 0, [True, False]
    for iteration in range(32):
        if iteration == 2:
            joined[1] = True
        active = [r for r, j in zip(requests, joined) if j and r.next() is not None]
        if not active:
            break
        for request in active:
            if isinstance(request.next(), ApproxRun):
                request.approximate()
        calling = [r for r in active if r.next() is not None and not isinstance(r.next(), ApproxRun)]
        if calling:
            needs = [r.next() for r in calling]
            denoiser = runs[0].cloud.denoiser
            conditioning = Conditioning.concat([runs[requests.index(r)].cloud.conditioning for r in calling])
            out = denoiser(torch.cat([n.model_input for n in needs]), torch.stack([n.timestep for n in needs]),
                           conditioning)
            unet_calls += 1
            for i, request in enumerate(calling):
                request.complete(out[i:i + 1])
    assert all(r.next() is None for r in requests)
    assert unet_calls < sum(run.sampler().counts.cloud for run in runs)  # calls were shared
    for request, expected in zip(requests, alone):
        torch.testing.assert_close(request.state.latents, expected, rtol=1e-4, atol=1e-5)


def test_prompts_encoded_from_many_threads_keep_their_shape(pipes):
    """Fast tokenizers share their padding state; concurrent encoding must still pad every prompt."""
    import concurrent.futures

    from ecdiff.conditioning import encode_conditioning

    cloud, _ = pipes
    alone = encode_conditioning(cloud, PROMPTS[0], 3.0)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: encode_conditioning(cloud, PROMPTS[i % 2], 3.0), range(64)))
    assert {tuple(r.prompt_embeds.shape) for r in results} == {tuple(alone.prompt_embeds.shape)}
    assert all(torch.equal(r.negative_embeds, alone.negative_embeds) for r in results)


@pytest.mark.parametrize("strategy", [
    ECDiff(2, 2, 0.4, 7),
    *(ECDiff(3, 2, 0.0, 10, rule=rule, beta=0.6) for rule in ("slope", "lsq", "quadratic")),
    HybridSD(4),
], ids=["paper", "slope", "lsq", "quadratic", "hybrid"])
def test_a_run_resumed_from_any_recorded_state_ends_bit_identically(pipes, strategy):
    """The state `on_state` records (latent, noise, gradient, curvature, real noises) is all a run needs:
    prepared again from it (another process, another replica), it continues exactly as it would have."""
    cloud, edge = pipes
    common = dict(prompts=PROMPTS[0], num_steps=12, guidance=3.0, cloud=cloud, edge=edge)
    run = prepare_run(strategy, seeds=4, **common)
    states = []
    whole = run.sampler().run(run.initial_state(), on_state=lambda s: states.append(s.map(torch.Tensor.clone)))
    approximated = [i for i, kind in enumerate(run.sampler().plan) if kind == StepKind.APPROX]
    # One state after every step whose latent exists: real steps and the ends of approximated runs.
    assert [s.step for s in states] == [i + 1 for i in range(12) if i not in approximated or i + 1 not in approximated]
    for state in states[:-1]:
        resumed = prepare_run(strategy, state=state, **common)
        assert resumed.start_step == state.step and resumed.initial_state() is resumed.resumed
        assert torch.equal(resumed.sampler().run(resumed.initial_state()).latents, whole.latents), state.step


def test_a_resumed_run_checks_its_state(pipes):
    cloud, _ = pipes
    common = dict(prompts=PROMPTS[0], num_steps=8, guidance=3.0, cloud=cloud)
    state = SamplerState(step=8, latents=torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match="a state entering step 8 cannot start a 8-step run"):
        prepare_run(CloudOnly(), state=state, **common)
    with pytest.raises(ValueError, match="at step 2"):
        prepare_run(CloudOnly(), state=SamplerState(step=3, latents=state.latents), start_step=2, **common)
    with pytest.raises(ValueError, match="exactly one start"):
        prepare_run(CloudOnly(), state=SamplerState(step=3, latents=state.latents), seeds=1, **common)
    resumed = prepare_run(CloudOnly(), state=SamplerState(step=3, latents=state.latents), **common)
    with pytest.raises(ValueError, match="a resumed run continues with sampler"):
        resumed.sample()
