"""The transport-free DiffusionX core on the tiny random pair: rounds, batching, the engine's
history across a restart, the refiner's strength sources."""

import pytest
import torch

from ecdiff.conventions import MAX_PROMPT_CHARS, initial_latents
from ecdiff.denoiser import latent_shape, pipeline_denoiser
from ecdiff.sampling import sample
from ecdiff.loading import load_pair
from ecdiff.diffusionx.engine import PreviewConfig, PreviewEngine
from ecdiff.diffusionx.refine import RefineCheckpoint, RefineConfig, Refiner
from ecdiff.diffusionx.rounds import RoundSpec, round_noise, run_round, run_rounds
from ecdiff.diffusionx.store import SessionNotFound, SessionStore, StoreConfig
from ecdiff.strategies import EdgeOnly

PROMPTS = ["a small red circle at the top on a white background", "a large blue diamond at the left on a gray background"]


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    return load_pair(tiny=True)


def test_txt2img_round_is_the_generation_convention(pair):
    got = run_round(pair.edge, pair.guidance, RoundSpec(PROMPTS[0], 4, 0, 5)).latents
    scheduler = type(pair.edge.scheduler).from_config(pair.edge.scheduler.config)
    x = initial_latents(4, latent_shape(pair.edge), scheduler, num_steps=5)
    expected = sample(EdgeOnly(), scheduler, None, pipeline_denoiser(pair.edge, PROMPTS[0], pair.guidance), x, num_steps=5)
    torch.testing.assert_close(got, expected.latents, rtol=0, atol=0)


def test_round_noise_is_per_round_and_reproducible():
    a, b = round_noise(3, 1, (1, 4, 8, 8)), round_noise(3, 2, (1, 4, 8, 8))
    assert torch.equal(a, round_noise(3, 1, (1, 4, 8, 8))) and not torch.equal(a, b)


def test_a_batch_equals_its_items_one_by_one(pair):
    init = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    specs = [RoundSpec(p, 10 + i, 2, 6, 0.5, init[i:i + 1]) for i, p in enumerate(PROMPTS)]
    batched = run_rounds(pair.cloud, pair.guidance, specs, role="cloud").latents
    for i, spec in enumerate(specs):
        single = run_round(pair.cloud, pair.guidance, spec, role="cloud").latents
        # Batched convolutions may sum in another order: float32 rounding, a few ulps of O(1) values.
        torch.testing.assert_close(batched[i:i + 1], single, rtol=1e-5, atol=1e-5)


def test_batches_must_share_schedule_and_strength(pair):
    with pytest.raises(ValueError, match="same num_steps and strength"):
        run_rounds(pair.edge, pair.guidance, [RoundSpec("a", 1, 0, 4), RoundSpec("b", 1, 0, 5)])
    with pytest.raises(ValueError, match="img2img needs both"):
        RoundSpec("a", 1, 1, 4, 0.5, None)


def test_history_survives_a_restart_and_limits_hold(pair, tmp_path):
    path = tmp_path / "s.sqlite"
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(StoreConfig(path=path, max_rounds=2)),
                           PreviewConfig(num_steps=4))
    first = engine.start(PROMPTS[0], seed=1)
    engine.store.close()
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(StoreConfig(path=path, max_rounds=2)),
                           PreviewConfig(num_steps=4))
    second = engine.revise(first.session_id, PROMPTS[1], 0.75)
    expected = run_round(pair.edge, pair.guidance, RoundSpec(PROMPTS[1], 1, 1, 4, 0.75, first.latents)).latents
    torch.testing.assert_close(second.latents, expected, rtol=0, atol=0)
    assert second.steps_run == 3 and second.strength_source == "request"
    with pytest.raises(ValueError, match="maximum of 2 rounds"):
        engine.revise(first.session_id, PROMPTS[0], 0.5)
    final = engine.finalize_input(first.session_id)
    assert (final.prompt, final.seed, final.round_index) == (PROMPTS[1], 1, 2)
    with pytest.raises(SessionNotFound):
        engine.finalize_input("missing")


def test_refiner_strength_sources(pair):
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    seen = []

    def chooser(prompt, images):
        seen.append((prompt, tuple(images.shape)))
        return 0.65

    refiner = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=10), chooser)
    assert refiner.refine(PROMPTS[0], 1, 1, latents).strength_source == "predictor"
    assert seen == [(PROMPTS[0], (1, 3, 64, 64))]
    r = refiner.refine(PROMPTS[0], 1, 1, latents, strength=0.3)
    assert (r.strength_source, r.start_step, r.cloud_calls) == ("request", 7, 3)
    plain = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=10))
    assert plain.refine(PROMPTS[0], 1, 1, latents).strength == 0.5
    with pytest.raises(ValueError, match="round_index"):
        plain.refine(PROMPTS[0], 1, 0, latents)


@pytest.mark.parametrize("approximate", [False, True])
def test_a_refinement_resumed_from_any_checkpoint_ends_as_the_uninterrupted_one(pair, approximate):
    """From the state after any step, in a fresh `prepare` whose predictor would choose otherwise: the
    strength chosen at the start is kept and the end is the uninterrupted refinement's, bit for bit."""
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    refiner = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=10), lambda prompt, images: 0.65)
    whole = refiner.refine(PROMPTS[0], 1, 1, latents, approximate=approximate)
    plan = refiner.prepare(PROMPTS[0], 1, 1, latents, approximate=approximate)
    states = []
    plan.run.sampler().run(plan.run.initial_state(), on_state=lambda state: states.append(state.map(torch.Tensor.clone)))
    states = [s for s in states if s.step < 10]
    assert states and all(s.step > plan.start_step for s in states)
    other = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=10), lambda prompt, images: 0.9)
    for state in states:
        resumed = other.prepare(PROMPTS[0], 1, 1, latents, approximate=approximate, resume=plan.checkpoint(state))
        got = resumed.refinement(resumed.run.sampler().run(resumed.run.initial_state()).latents)
        assert torch.equal(got.latents, whole.latents)
        assert (got.strength, got.strength_source, got.start_step, got.cloud_calls, got.approx_steps) == (
            0.65, "predictor", whole.start_step, whole.cloud_calls, whole.approx_steps)
    with pytest.raises(ValueError, match="not within this refinement's steps"):
        other.prepare(PROMPTS[0], 1, 1, latents, resume=RefineCheckpoint(states[0], 0.2, "request"))


@pytest.mark.parametrize("rule", ["slope", "lsq", "quadratic"])
def test_an_approximated_refinement_with_each_extrapolation_rule(pair, rule):
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    config = RefineConfig(num_steps=20, k=2, rule=rule, beta=0.5)
    refined = Refiner(pair.cloud, pair.guidance, config).refine(PROMPTS[0], 1, 1, latents, strength=0.6, approximate=True)
    # start 8 of 20: real calls 8, 9, 10, then k = 2 approximated steps per real call: 13, 16, 19
    assert (refined.start_step, refined.cloud_calls, refined.approx_steps) == (8, 6, 6)
    paper = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=20, k=2)).refine(
        PROMPTS[0], 1, 1, latents, strength=0.6, approximate=True)
    assert not torch.equal(refined.latents, paper.latents)  # the rule is the one that ran
    if rule != "slope":  # the slope rule reads two real noises: pre_steps 2 is enough
        with pytest.raises(ValueError, match="needs pre_steps >= 3"):
            RefineConfig(pre_steps=2, rule=rule, beta=0.5)
    with pytest.raises(ValueError, match="needs beta"):
        RefineConfig(rule=rule)


def test_a_session_keeps_the_largest_u64_seed_end_to_end(pair, tmp_path):
    seed = 2**64 - 1
    config = StoreConfig(path=tmp_path / "s.sqlite")
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(config), PreviewConfig(num_steps=4))
    first = engine.start(PROMPTS[0], seed=seed)
    expected = run_round(pair.edge, pair.guidance, RoundSpec(PROMPTS[0], seed, 0, 4)).latents
    torch.testing.assert_close(first.latents, expected, rtol=0, atol=0)
    engine.store.close()
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(config), PreviewConfig(num_steps=4))
    second = engine.revise(first.session_id, PROMPTS[1], 0.5)
    expected = run_round(pair.edge, pair.guidance, RoundSpec(PROMPTS[1], seed, 1, 4, 0.5, first.latents)).latents
    torch.testing.assert_close(second.latents, expected, rtol=0, atol=0)
    assert engine.finalize_input(first.session_id).seed == seed


def test_seeds_outside_u64_and_long_prompts_are_refused_before_any_model_runs(pair):
    calls = []
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(), PreviewConfig(num_steps=4))
    engine._round = lambda *args: calls.append(args)
    for seed in (2**64, -1):
        with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*64\)"):
            engine.start(PROMPTS[0], seed=seed)
    assert PreviewConfig().max_prompt_chars == MAX_PROMPT_CHARS
    with pytest.raises(ValueError, match="limit is"):
        engine.start("a" * (MAX_PROMPT_CHARS + 1), seed=0)
    assert calls == []


def test_the_checks_refuse_what_a_round_would_refuse_without_running_a_model(pair):
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(StoreConfig(max_rounds=2)), PreviewConfig(num_steps=4))
    first = engine.start(PROMPTS[0], seed=1)
    calls = []
    engine._round = lambda *args: calls.append(args)
    engine.check_start(PROMPTS[0], seed=2)
    engine.check_revision(first.session_id, PROMPTS[1], 0.5)
    engine.check_revision(first.session_id, PROMPTS[1])  # no strength: the predictor or the default chooses
    with pytest.raises(ValueError, match="prompt is empty"):
        engine.check_start(" ", seed=2)
    with pytest.raises(ValueError, match="seed must be"):
        engine.check_start(PROMPTS[0], seed=-1)
    with pytest.raises(SessionNotFound, match="unknown session 'missing'"):
        engine.check_revision("missing", PROMPTS[1], 0.5)
    with pytest.raises(ValueError, match="strength must be"):
        engine.check_revision(first.session_id, PROMPTS[1], 1.5)
    with pytest.raises(ValueError, match="prompt is empty"):
        engine.check_revision(first.session_id, "", 0.5)
    engine.store.append_round(first.session_id, PROMPTS[1], 0.5, first.latents)  # the session is now full
    with pytest.raises(ValueError, match="maximum of 2 rounds"):
        engine.check_revision(first.session_id, PROMPTS[0], 0.5)
    assert calls == []


def test_the_edge_predictor_sees_both_prompts_and_the_previous_preview_and_may_abstain(pair):
    seen = []

    def predictor(previous, prompt, images):
        seen.append((previous, prompt, tuple(images.shape)))
        return None if "abstain" in prompt else 0.7

    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(), PreviewConfig(num_steps=4), predictor)
    first = engine.start(PROMPTS[0], seed=1)
    second = engine.revise(first.session_id, PROMPTS[1])
    assert (second.strength, second.strength_source) == (0.7, "predictor")
    third = engine.revise(first.session_id, "abstain, please")
    assert (third.strength, third.strength_source) == (PreviewConfig().default_strength, "default")
    assert seen[0][:2] == (PROMPTS[0], PROMPTS[1]) and seen[0][2][:2] == (1, 3)  # one decoded RGB preview


def test_previews_and_refinements_never_ask_diffusers_for_the_pipelines_device(pair, monkeypatch):
    """`DiffusionPipeline.device` walks every module of every component: milliseconds per call."""
    for pipe in (pair.edge, pair.cloud):
        monkeypatch.setattr(type(pipe), "device", property(lambda self: pytest.fail("DiffusionPipeline.device called")))
    engine = PreviewEngine(pair.edge, pair.guidance, SessionStore(), PreviewConfig(num_steps=4),
                           lambda previous, prompt, images: 0.6)
    first = engine.start(PROMPTS[0], seed=1)
    second = engine.revise(first.session_id, PROMPTS[1])
    assert second.strength_source == "predictor" and second.image_png
    refiner = Refiner(pair.cloud, pair.guidance, RefineConfig(num_steps=6), lambda prompt, images: 0.5)
    assert refiner.refine(PROMPTS[1], 1, 1, second.latents).strength_source == "predictor"
