import random

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, EulerDiscreteScheduler

from ecdiff.sampling import ApproxRun, ModelCall, Sampler, sample
from ecdiff.schedules import SD_DDIM_CONFIG, sd_ddim_scheduler
from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD, PlanCounts, StepKind

from support.analytic import SmoothDenoiser, random_latents, rel_err


def reference_algorithm1(T, p, k, alpha, s, scheduler, cloud, edge, x, corrections=1):
    """Algorithm 1 written from the paper's description, through scheduler.step, in float64.
    corrections=2 is the ablation that makes two real calls after each run of k approximations."""
    scheduler.set_timesteps(T)
    used = []  # the noise used at each step
    delta = None
    for i, t in enumerate(scheduler.timesteps):
        if i >= s:
            eps = edge(scheduler.scale_model_input(x, t), t)
        elif i < p or (i - p) % (k + corrections) >= k:
            eps = cloud(scheduler.scale_model_input(x, t), t)
            if i == p - 1:
                delta = eps - used[-1]
            elif i > p - 1:
                delta = alpha * (eps - used[-1])
        else:
            eps = used[-1] + delta
        used.append(eps)
        x = scheduler.step(eps, t, x).prev_sample
    return x


@pytest.mark.parametrize("trial", range(12))
def test_matches_independent_algorithm1(trial):
    rng = random.Random(trial)
    T = rng.choice([10, 20, 50])
    p = rng.randint(2, T // 2)
    k = rng.randint(0, 5)
    alpha = rng.choice([0.0, 0.1, 0.35, 0.5, 0.9, 1.0])
    s = rng.randint(p, T)
    spacing = rng.choice(["leading", "trailing", "linspace"])
    cloud, edge = SmoothDenoiser(100 + trial), SmoothDenoiser(200 + trial)
    x = random_latents(trial)
    result = sample(ECDiff(p, k, alpha, s), sd_ddim_scheduler(timestep_spacing=spacing), cloud, edge, x, num_steps=T)
    expected = reference_algorithm1(T, p, k, alpha, s, sd_ddim_scheduler(timestep_spacing=spacing), cloud, edge, x.double())
    assert rel_err(result.latents, expected) < 1e-5, (T, p, k, alpha, s, spacing)
    counts = PlanCounts.of(ECDiff(p, k, alpha, s).plan(T))
    assert (result.cloud_calls, result.approx_steps, result.edge_calls) == (counts.cloud, counts.approx, counts.edge)


def reference_rules(T, p, k, rule, beta, s, scheduler, cloud, edge, x):
    """The non-paper extrapolation rules written from their definitions, through scheduler.step, in
    float64: the noise of an approximated step i after the last real call r is e_r + beta * (E(i) - e_r),
    E extrapolating the last real noises (t, e_t): the line through the last two (slope), the
    least-squares line through the last three moved to pass through e_r (lsq), or the Lagrange
    parabola through the last three (quadratic; the line when only two exist)."""
    scheduler.set_timesteps(T)
    real = []  # (step, noise) of every real cloud call
    for i, t in enumerate(scheduler.timesteps):
        if i >= s:
            eps = edge(scheduler.scale_model_input(x, t), t)
        elif i < p or (i - p) % (k + 1) == k:
            eps = cloud(scheduler.scale_model_input(x, t), t)
            real.append((i, eps))
        else:
            points = real[-2:] if rule == "slope" else real[-3:]
            r, e_r = points[-1]
            if len(points) == 2:
                (r1, e_1), _ = points
                extrapolated = e_r + (e_r - e_1) / (r - r1) * (i - r)
            elif rule == "lsq":
                t_bar = sum(tm for tm, _ in points) / 3
                b = sum((tm - t_bar) * e for tm, e in points) / sum((tm - t_bar) ** 2 for tm, _ in points)
                extrapolated = e_r + b * (i - r)
            else:
                extrapolated = sum(e * torch.prod(torch.tensor([(i - tn) / (tm - tn) for tn, _ in points if tn != tm],
                                                                dtype=torch.float64)) for tm, e in points)
            eps = e_r + beta * (extrapolated - e_r)
        x = scheduler.step(eps, t, x).prev_sample
    return x


@pytest.mark.parametrize("rule", ["slope", "lsq", "quadratic"])
@pytest.mark.parametrize("trial", range(6))
def test_extrapolation_rules_match_their_definitions(rule, trial):
    rng = random.Random(trial)
    T = rng.choice([10, 20, 50])
    p = rng.randint(2, T // 2)
    k = rng.randint(1, 5)
    beta = rng.choice([0.0, 0.3, 1.0])
    s = rng.randint(p, T)
    cloud, edge = SmoothDenoiser(300 + trial), SmoothDenoiser(400 + trial)
    x = random_latents(trial)
    strategy = ECDiff(p, k, 0.5, s, rule=rule, beta=beta)
    result = sample(strategy, sd_ddim_scheduler(), cloud, edge, x, num_steps=T)
    expected = reference_rules(T, p, k, rule, beta, s, sd_ddim_scheduler(), cloud, edge, x.double())
    assert rel_err(result.latents, expected) < 1e-5, (T, p, k, beta, s)
    # float64 latents take the plain-torch path (the kernels take fp32/fp16/bf16 only)
    result64 = sample(strategy, sd_ddim_scheduler(), cloud, edge, x.double(), num_steps=T)
    assert rel_err(result64.latents, expected) < 1e-6, (T, p, k, beta, s)


@pytest.mark.parametrize("rule", ["slope", "lsq", "quadratic"])
def test_extrapolation_rules_through_a_generic_scheduler(rule):
    def make():
        return EulerDiscreteScheduler(**{k: v for k, v in SD_DDIM_CONFIG.items() if k not in ("clip_sample", "set_alpha_to_one")})

    cloud, edge = SmoothDenoiser(1), SmoothDenoiser(2)
    x = random_latents(3) * make().init_noise_sigma
    result = sample(ECDiff(4, 3, 0.5, 16, rule=rule, beta=0.6), make(), cloud, edge, x, num_steps=20)
    expected = reference_rules(20, 4, 3, rule, 0.6, 16, make(), cloud, edge, x.double())
    assert rel_err(result.latents, expected) < 1e-5


@pytest.mark.parametrize("rule", ["paper", "slope", "lsq", "quadratic"])
def test_a_rule_resumes_from_any_step(rule):
    # The state (latent, noise used, gradient, curvature, last real noises) is all a request needs:
    # stopping at every step, inside approximated runs too, and going on gives the same picture (up
    # to the rounding of shorter fused runs).
    cloud = SmoothDenoiser(21)
    x = random_latents(6)
    strategy = ECDiff(3, 4, 0.3, 30, rule=rule, beta=0.7)
    whole = sample(strategy, sd_ddim_scheduler(), cloud, None, x, num_steps=30)
    sampler = Sampler(strategy, sd_ddim_scheduler(), cloud, None, num_steps=30)
    state = sampler.initial_state(x)
    for stop in range(1, 31):
        state = sampler.run(state, stop)
    assert rel_err(state.latents, whole.latents) < 1e-6


def test_a_fit_refuses_a_state_without_the_real_noises_it_reads():
    cloud = SmoothDenoiser(5)
    strategy = ECDiff(3, 2, 0.5, 10, rule="lsq", beta=0.5)
    sampler = Sampler(strategy, sd_ddim_scheduler(), cloud, None, num_steps=10)
    state = sampler.run(sampler.initial_state(random_latents(1)), 2)
    state.real_noises = state.real_noises[:1]
    with pytest.raises(ValueError, match="reads 3 real noises but the state carries 1"):
        sampler.run(state, 3)


@pytest.mark.parametrize("make_scheduler", [
    lambda: EulerDiscreteScheduler(**{k: v for k, v in SD_DDIM_CONFIG.items() if k not in ("clip_sample", "set_alpha_to_one")}),
    lambda: DPMSolverMultistepScheduler(**{k: v for k, v in SD_DDIM_CONFIG.items() if k not in ("clip_sample", "set_alpha_to_one")}),
    lambda: sd_ddim_scheduler(clip_sample=True),
], ids=["euler", "dpmsolver++", "ddim-clipped"])
def test_generic_schedulers_go_through_step(make_scheduler):
    cloud, edge = SmoothDenoiser(1), SmoothDenoiser(2)
    x = random_latents(3) * make_scheduler().init_noise_sigma
    result = sample(ECDiff(4, 2, 0.5, 16), make_scheduler(), cloud, edge, x, num_steps=20)
    expected = reference_algorithm1(20, 4, 2, 0.5, 16, make_scheduler(), cloud, edge, x.double())
    assert rel_err(result.latents, expected) < 1e-5


def test_cloud_only_is_a_plain_ddim_loop():
    cloud = SmoothDenoiser(5)
    x = random_latents(4)
    scheduler = sd_ddim_scheduler()
    scheduler.set_timesteps(50)
    expected = x.clone()
    for t in scheduler.timesteps:
        expected = scheduler.step(cloud(expected, t), t, expected).prev_sample
    result = sample(CloudOnly(), sd_ddim_scheduler(), cloud, None, x, num_steps=50)
    torch.testing.assert_close(result.latents, expected, rtol=1e-5, atol=1e-5)
    assert result.cloud_calls == 50 and result.edge_calls == 0 and result.approx_steps == 0
    torch.testing.assert_close(result.handoff, result.latents, rtol=0, atol=0)


@pytest.mark.parametrize("s", [2, 13, 37, 50])
def test_k_zero_equals_hybrid(s):
    cloud, edge = SmoothDenoiser(7), SmoothDenoiser(8)
    x = random_latents(5)
    a = sample(ECDiff(2, 0, 0.5, s), sd_ddim_scheduler(), cloud, edge, x, num_steps=50)
    b = sample(HybridSD(s), sd_ddim_scheduler(), cloud, edge, x, num_steps=50)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.handoff, b.handoff)


def test_approximation_is_exact_for_a_point_mass():
    # For data concentrated at c, eps(x_t, t) = (x_t - sqrt(a_t) c) / sqrt(1 - a_t), and along a
    # DDIM trajectory that eps never changes: the gradient is zero, so every approximated step uses
    # the exact noise and EC-Diff equals cloud-only. The endpoint is sqrt(a_0) c + sqrt(1 - a_0) eps_T.
    scheduler = sd_ddim_scheduler()
    alphas = scheduler.alphas_cumprod.double()
    c = torch.linspace(-1, 1, 2 * 4 * 8 * 8, dtype=torch.float64).view(2, 4, 8, 8)

    def exact(x, t):
        a = alphas[int(t)]
        return ((x.double() - a.sqrt() * c) / (1 - a).sqrt()).to(x.dtype)

    x = random_latents(9, dtype=torch.float64)
    ecdiff = sample(ECDiff(3, 4, 0.5, 30), sd_ddim_scheduler(), exact, exact, x, num_steps=50)
    cloud = sample(CloudOnly(), sd_ddim_scheduler(), exact, None, x, num_steps=50)
    torch.testing.assert_close(ecdiff.latents, cloud.latents, rtol=1e-9, atol=1e-9)
    eps_T = exact(x, sd_timestep(0))
    a_final = float(scheduler.final_alpha_cumprod)
    torch.testing.assert_close(ecdiff.latents, a_final**0.5 * c + (1 - a_final) ** 0.5 * eps_T, rtol=1e-9, atol=1e-9)


def sd_timestep(i, num_steps=50):
    scheduler = sd_ddim_scheduler()
    scheduler.set_timesteps(num_steps)
    return scheduler.timesteps[i]


def test_records_and_handoff():
    cloud, edge = SmoothDenoiser(1), SmoothDenoiser(2)
    x = random_latents(1)
    strategy = ECDiff(7, 2, 0.5, 37)
    seen = []
    result = sample(strategy, sd_ddim_scheduler(), cloud, edge, x, num_steps=50,
                    on_step=lambda record, latents: seen.append((record, latents)))
    assert [r.kind for r in result.steps] == list(strategy.plan(50))
    assert [r.index for r in result.steps] == list(range(50))
    assert [r for r, _ in seen] == result.steps
    assert all(r.seconds >= 0 for r in result.steps)
    assert (result.cloud_calls, result.approx_steps, result.edge_calls) == (17, 20, 13)
    assert cloud.calls == 17 and edge.calls == 13
    # The handoff is the latent entering step 37: the edge phase alone from it gives the same end.
    assert result.handoff_step == 37
    sampler = Sampler(strategy, sd_ddim_scheduler(), cloud, edge, num_steps=50)
    state = sampler.initial_state(result.handoff)
    state.step = 37
    assert torch.equal(sampler.run(state).latents, result.latents)
    # Intermediate latents of a fused approximated run are not materialised; run ends are.
    latents_at = {r.index: lat for r, lat in seen}
    assert latents_at[7] is None and latents_at[8] is not None


def test_split_across_processes_is_bit_identical():
    # Cloud phase and edge phase in separate Sampler objects (fresh schedulers) = one sample().
    cloud, edge = SmoothDenoiser(11), SmoothDenoiser(12)
    x = random_latents(2)
    strategy = ECDiff(5, 3, 0.4, 29)
    whole = sample(strategy, sd_ddim_scheduler(), cloud, edge, x, num_steps=50)
    first = Sampler(strategy, sd_ddim_scheduler(), cloud, None, num_steps=50)
    handoff = first.run(first.initial_state(x), stop=first.switch_step)
    second = Sampler(strategy, sd_ddim_scheduler(), None, edge, num_steps=50)
    assert torch.equal(second.run(handoff).latents, whole.latents)


def test_edge_only_calls_only_the_edge():
    cloud, edge = SmoothDenoiser(1), SmoothDenoiser(2)
    result = sample(EdgeOnly(), sd_ddim_scheduler(), None, edge, random_latents(0), num_steps=10)
    assert result.edge_calls == 10 and result.cloud_calls == 0 and cloud.calls == 0
    assert result.handoff_step == 0


def test_validation_errors():
    cloud = SmoothDenoiser(1)
    x = random_latents(0)
    with pytest.raises(ValueError, match="need the edge model"):
        sample(HybridSD(3), sd_ddim_scheduler(), cloud, None, x, num_steps=10)
    with pytest.raises(ValueError, match="need the cloud model"):
        sample(CloudOnly(), sd_ddim_scheduler(), None, cloud, x, num_steps=10)
    with pytest.raises(ValueError, match="floating-point"):
        sample(CloudOnly(), sd_ddim_scheduler(), cloud, None, torch.zeros(1, 4, 8, 8, dtype=torch.int64), num_steps=10)
    with pytest.raises(ValueError, match="torch.Tensor"):
        sample(CloudOnly(), sd_ddim_scheduler(), cloud, None, [[0.0]], num_steps=10)
    with pytest.raises(ValueError, match="batched"):
        sample(CloudOnly(), sd_ddim_scheduler(), cloud, None, torch.zeros(4), num_steps=10)
    with pytest.raises(ValueError, match=r"returned \(1, 4, 8, 8\)"):
        sample(CloudOnly(), sd_ddim_scheduler(), lambda x, t: x[:1], None, x, num_steps=10)
    with pytest.raises(ValueError, match="float64"):
        sample(CloudOnly(), sd_ddim_scheduler(), lambda x, t: x.double(), None, x, num_steps=10)
    with pytest.raises(ValueError, match="num_steps"):
        sample(CloudOnly(), sd_ddim_scheduler(), cloud, None, x, num_steps=0)
    sampler = Sampler(ECDiff(3, 2, 0.5, 9), sd_ddim_scheduler(), cloud, cloud, num_steps=10)
    state = sampler.initial_state(x)
    state.step = 3  # an approximated step, but no gradient in the state
    with pytest.raises(ValueError, match="no noise gradient"):
        sampler.run(state)
    with pytest.raises(ValueError, match="cannot run steps"):
        sampler.run(sampler.initial_state(x), stop=11)


def test_correcting_twice_matches_reference():
    T, p, k, alpha, s = 30, 4, 3, 0.5, 25
    cloud, edge = SmoothDenoiser(21), SmoothDenoiser(22)
    x = random_latents(6)
    expected = reference_algorithm1(T, p, k, alpha, s, sd_ddim_scheduler(), cloud, edge, x.double(), corrections=2)
    result = sample(ECDiff(p, k, alpha, s, corrections=2), sd_ddim_scheduler(), cloud, edge, x, num_steps=T)
    assert rel_err(result.latents, expected) < 1e-5


def test_requests_driven_from_outside_interleave_without_interfering():
    """Two requests advanced alternately by an outside driver (as an engine would) end exactly where
    each ends alone: all of a request's state is its own."""
    cloud, edge = SmoothDenoiser(31), SmoothDenoiser(32)
    plans = [(ECDiff(3, 2, 0.4, 15), random_latents(7)), (ECDiff(5, 1, 0.7, 18), random_latents(8))]
    alone = [sample(s, sd_ddim_scheduler(), cloud, edge, x, num_steps=20).latents for s, x in plans]
    samplers = [Sampler(s, sd_ddim_scheduler(), cloud, edge, num_steps=20) for s, _ in plans]
    requests = [sampler.request(sampler.initial_state(x)) for sampler, (_, x) in zip(samplers, plans)]
    needs_seen = set()
    while any(r.next() is not None for r in requests):
        for request in requests:
            need = request.next()
            if need is None:
                continue
            needs_seen.add(type(need).__name__)
            assert request.next() is need  # asking again does not advance
            if isinstance(need, ApproxRun):
                request.approximate()
            else:
                request.complete((cloud if need.kind == StepKind.CLOUD else edge)(need.model_input, need.timestep))
    assert needs_seen == {"ModelCall", "ApproxRun"}
    for request, expected in zip(requests, alone):
        assert request.state.step == 20
        assert torch.equal(request.state.latents, expected)


def test_a_request_refuses_the_wrong_answer():
    sampler = Sampler(ECDiff(2, 2, 0.5, 8), sd_ddim_scheduler(), None, None, num_steps=10)
    request = sampler.request(sampler.initial_state(random_latents(0)))
    assert isinstance(request.next(), ModelCall)
    with pytest.raises(RuntimeError, match="not an approximated run"):
        request.approximate()
    request.complete(torch.zeros(2, 4, 8, 8))
    assert isinstance(request.next(), ModelCall)
    request.complete(torch.zeros(2, 4, 8, 8))
    assert isinstance(request.next(), ApproxRun)
    with pytest.raises(RuntimeError, match="not waiting for a model call"):
        request.complete(torch.zeros(2, 4, 8, 8))


def test_the_callers_scheduler_is_left_alone():
    scheduler = sd_ddim_scheduler()
    sample(CloudOnly(), scheduler, SmoothDenoiser(1), None, random_latents(0), num_steps=10)
    assert scheduler.num_inference_steps is None
