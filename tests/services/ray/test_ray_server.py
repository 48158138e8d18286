"""The cloud on Ray Serve (services/ray_server.py): a local Ray instance started here (2 CPUs), two
replicas × 1 CPU of the tiny cloud, our gRPC front end, and an edge calling it as any cloud.

Independent of speed: the replicas' UNet calls pass a gate (tests/support/pace.py, installed in every
Ray worker by the test-only sitecustomize) that is open while a file exists; a test that must catch
a request mid-way removes the file, so the request waits in the replica's engine until the test
has acted, however fast the model is.
"""

import asyncio
import contextlib
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest
import ray
import torch
from diffusers import DDIMScheduler
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ecdiff.diffusionx.refine import RefineConfig, Refiner
from ecdiff.engine.work import DeadlineExceeded, DeadlineUnmeetable
from ecdiff.images import decode_images, png_bytes
from ecdiff.services.background import BackgroundServices
from ecdiff.services.cloud_phase import CloudJob, CloudStep
from ecdiff.services.config import CloudConfig, EdgeConfig
from ecdiff.services import ray_wire
from ecdiff.services.identity import identity_of
from ecdiff.services.ray_runner import RayCloudPhaseRunner
from ecdiff.services.ray_server import start_cloud_ray
from ecdiff.services.server import start_edge
from ecdiff.strategies import CloudOnly, ECDiff
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2
from ecdiff.wire.tensors import from_proto, to_proto
from support.exact_requests import exact_generate_request
from support.strategy_table import strategy_table
from support.pace import child_env
from support.tiny_ladder import ASKED, SERVED, write_tiny_ladder
from support.tiny_ladder import STEPS as LADDER_STEPS
from support.unet_calls import wait_until

pytestmark = pytest.mark.slow  # a Ray instance and two replicas: about a minute on 2 cores

STEPS = 8
PROMPT = "a small red circle at the top left"
DIFFUSIONX_CLOUD = dict(predictors="none", refine_steps=8)
DIFFUSIONX_EDGE = dict(predictors="none", preview_steps=6, session_db=":memory:")
STRATEGIES = strategy_table(ECDiff(2, 2, 0.5, 6), cloud_steps=3)
PROXY_DEADLINE_S = 6.0  # ample for a request to reach a warm replica on a loaded 2-core machine
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def file_gate(path):
    path.touch()  # open
    yield path
    path.touch()  # open for what runs next, whatever the test left


@pytest.fixture(scope="module")
def gate(tmp_path_factory):
    yield from file_gate(tmp_path_factory.mktemp("ray") / "gate")


@pytest.fixture(scope="module")
def loading(tmp_path_factory):
    """Replicas load their model only while this file exists (a restarted replica stays STARTING)."""
    yield from file_gate(tmp_path_factory.mktemp("ray") / "loading")


@pytest.fixture(scope="module")
def ray_instance(gate, loading):
    # The job's workers (the replicas among them) get the gates and the test pace; Ray's own
    # processes do not (the sitecustomize would load the tiny pair in each).
    # 2 CPUs for the module's two replicas, 1 for the adaptive-quality cloud's (a reservation, not a core).
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {**child_env(f"0:{gate}", loading), **{
                 name: value for name, value in os.environ.items() if name == "ECDIFF_TEST_PACE"}}})
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def services(ray_instance, tiny_pair):
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on(coroutine, timeout=180):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy_port = probe.getsockname()[1]
    # Ray Serve's own gRPC proxy too, on the same replicas (ProxiedCloudReplica: a CloudReplica that also
    # answers it), for the deadline test through it.
    cloud = on(start_cloud_ray(CloudConfig(port=0, model="tiny", ray=True, replicas=2, replica_cpus=1,
                                           torch_threads=1, metrics_port=0, ray_grpc_port=proxy_port,
                                           **DIFFUSIONX_CLOUD)))
    # The edge waits out a restart of every replica (the stream resumes once one is back).
    edge = on(start_edge(EdgeConfig(port=0, cloud=cloud.target, checkpoint_every=2, cloud_event_timeout_s=120,
                                    **DIFFUSIONX_EDGE), tiny_pair[1]))
    app = cloud.clients[0]
    try:
        yield SimpleNamespace(cloud=cloud, edge=edge, app=app, on=on, proxy_target=f"127.0.0.1:{proxy_port}")
    finally:
        on(edge.stop(0))
        on(cloud.stop(0))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def request(strategy, steps=STEPS, **fields):
    return exact_generate_request(prompt=PROMPT, seed=7, num_steps=steps, strategy=strategy,
                                  params=STRATEGIES[strategy][1], **fields)


def replicas(services):
    return services.app.replica_snapshots()


def total(services, outcome):
    return sum(s.stats.finished[outcome] for s in replicas(services).values())


def eventually(condition, what, timeout=60.0):
    def slow_condition():  # each look is a Ray call: not in a tight loop
        time.sleep(0.05)
        return condition()

    wait_until(slow_condition, what, timeout)


def read_until(read, condition, what, timeout=60.0):
    """`read()` until `condition` holds on one value; that value (judged and used from one read: a
    killed replica's board entry lingers 10 s, a new one's may lag a second)."""
    seen = {}

    def holds():
        seen["value"] = read()
        return condition(seen["value"])

    eventually(holds, what, timeout)
    return seen["value"]


def board_until(services, condition, what, timeout=60.0):
    return read_until(lambda: replicas(services), condition, what, timeout)


def health(target, service=""):
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_through_the_edge_equals_the_single_process_cloud(services, reference, name):
    with grpc.insecure_channel(services.edge.target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
        events = list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request(name, return_latents=True), timeout=120))
    result = events[-1].result
    expected = reference(STRATEGIES[name][0], PROMPT, 7, STEPS)
    # One request at a time: each runs alone on its replica's engine (a batch of one), so the result
    # is bit-identical to the in-process core, as a single-process cloud's is (tests/services/test_grpc.py).
    assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
    s = result.summary
    assert not s.degraded and (s.cloud_calls, s.approx_steps, s.edge_calls) == (
        expected.cloud_calls, expected.approx_steps, expected.edge_calls)


def test_replicas_stream_their_tensors_in_numpy_form(services, monkeypatch):
    # The front end reads what a replica streams through services/ray_wire.py (looked up by name when
    # Ray unpickles here): only if the replica registered it, instead of torch's storage pickling.
    read, original = [], ray_wire.tensor_from_wire

    def counted(wire):
        read.append(wire[1])
        return original(wire)

    monkeypatch.setattr(ray_wire, "tensor_from_wire", counted)
    with grpc.insecure_channel(services.edge.target) as channel:
        events = list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("ecdiff"), timeout=120))
    assert events[-1].result.summary.cloud_calls > 0
    assert "float32" in read  # at least the handoff's latents


def test_replicas_write_no_access_log(services):
    # Our front end logs every RPC; Serve's line per call would cost each replica a write, Ray's log
    # monitor a copy and the front end a print.
    with grpc.insecure_channel(services.edge.target) as channel:
        events = list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("ecdiff"), timeout=120))
    assert events[-1].result.summary.cloud_calls > 0
    serve_logs = Path(ray._private.worker._global_node.get_logs_dir_path()) / "serve"
    replica_logs = [path.read_text() for path in serve_logs.glob("replica_*CloudReplica*.log")]
    assert replica_logs and "Finished initializing replica" in "".join(replica_logs)  # the right files
    assert not any(line for text in replica_logs for line in text.splitlines() if "CALL denoise" in line)


def test_model_info_health_and_per_replica_metrics(services, tiny_pair):
    with grpc.insecure_channel(services.cloud.target) as channel:
        info = cloud_pb2_grpc.CloudDenoiserStub(channel).GetModelInfo(cloud_pb2.ModelInfoRequest(), timeout=30)
    local = identity_of(tiny_pair[0])
    assert (info.model_name, info.scheduler_config_sha256, info.text_encoder.sha256, tuple(info.latent_shape)) == (
        local.model_name, local.scheduler_sha256, local.text_encoder_sha256, local.latent_shape)
    assert health(services.cloud.target) == SERVING
    assert health(services.cloud.target, "ecdiff.v1.CloudDenoiser") == SERVING
    eventually(lambda: len(replicas(services)) == 2, "both replicas report their engine's metrics")
    # The front end's Prometheus exporter: each replica's engine, labelled, beside the RPCs.
    def scrape():
        text = urllib.request.urlopen(f"http://127.0.0.1:{services.cloud.metrics_port}/metrics", timeout=30).read().decode()
        calls = {s.labels["replica"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "ecdiff_unet_calls_total"}
        return text, calls

    # Replicas publish every REPLICA_STATS_EVERY_S: on a fast machine the strategies' requests may all have run
    # since the last publication.
    text, calls = read_until(scrape, lambda scraped: sum(scraped[1].values()) > 0,
                             "the scraped replica metrics count the strategies' UNet calls")
    assert set(calls) == set(replicas(services))
    assert "ecdiff_rpcs_total" in text


def diffusionx_session(edge_target, approximate):
    """StartSession, Revise, then Finalize through an edge, the cloud required: Finalize's result."""
    with grpc.insecure_channel(edge_target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
        client = diffusionx_pb2_grpc.EdgeSessionsStub(channel)
        first = list(client.StartSession(diffusionx_pb2.StartSessionRequest(prompt=PROMPT, seed=11), timeout=60))
        session = first[-1].result.session_id
        list(client.Revise(diffusionx_pb2.ReviseRequest(session_id=session, prompt=PROMPT + " on black", strength=0.5),
                           timeout=60))
        return list(client.Finalize(diffusionx_pb2.FinalizeRequest(
            session_id=session, strength=0.6, approximate=approximate, return_latents=True, require_cloud=True),
            timeout=120))[-1].result


@pytest.mark.parametrize("approximate", [False, True])
def test_diffusionx_refine_through_the_replicas_gives_the_plain_clouds_image(services, tiny_pair, approximate):
    calls_before = sum(r.stats.unet_calls for r in replicas(services).values())
    final = diffusionx_session(services.edge.target, approximate)
    with BackgroundServices(*tiny_pair, CloudConfig(**DIFFUSIONX_CLOUD), EdgeConfig(**DIFFUSIONX_EDGE)) as plain:
        expected = diffusionx_session(plain.edge_target, approximate)
    s, e = final.summary, expected.summary
    # One request at a time: a batch of one on the replica's engine, as on the plain cloud's.
    assert not s.degraded and s.strength_source == "request" and final.image_png == expected.image_png
    assert torch.equal(from_proto(final.latents, max_elements=1 << 16), from_proto(expected.latents, max_elements=1 << 16))
    assert (s.steps_run, s.cloud_calls, s.approx_steps) == (e.steps_run, e.cloud_calls, e.approx_steps)
    assert s.cloud_calls < s.steps_run if approximate else s.cloud_calls == s.steps_run
    # Observability: the refinement's UNet calls were made by a replica's engine, seen in the per-replica
    # metrics (nothing else runs; `>=`: the figures read before may have been a second old).
    eventually(lambda: sum(r.stats.unet_calls for r in replicas(services).values()) >= calls_before + s.cloud_calls,
               "a replica's engine reports the refinement's UNet calls")


def test_deadline_reaches_the_replica_engine(services, gate):
    """The replica's engine acts on the caller's deadline: it runs the request until the deadline
    passes (DeadlineExceeded), or, when its measured iteration time says the deadline cannot be met,
    refuses it at once (DeadlineUnmeetable); either comes back as the replica's own exception, and
    through gRPC with the same status as on a plain cloud. Which one depends on the model's speed."""
    ended = total(services, "deadline")
    refused = sum(s.stats.refused["deadline"] for s in replicas(services).values())
    runner = RayCloudPhaseRunner(services.app.handle)
    job = CloudJob(PROMPT, 4, STEPS, CloudOnly())
    outcome = {}

    async def run_past_deadline():
        events = []
        try:
            async for event in runner.run(job, deadline=time.monotonic() + 1.0):
                events.append(event)
        except (DeadlineExceeded, DeadlineUnmeetable) as exc:
            outcome["error"] = exc
        outcome["events"] = events

    gate.unlink()
    try:
        task = threading.Thread(target=lambda: services.on(run_past_deadline()))
        task.start()
        eventually(lambda: "error" in outcome or any(s.running for s in replicas(services).values()),
                   "the request runs on a replica or is refused")
        if "error" not in outcome:
            time.sleep(1.2)  # past the deadline while the model is held (the gate, not the clock, holds it)
    finally:
        gate.touch()
    task.join(60)
    if isinstance(outcome["error"], DeadlineExceeded):
        # The step held at the gate finished after the deadline; the engine's next iteration retired it.
        assert len(outcome["events"]) < STEPS and all(isinstance(e, CloudStep) for e in outcome["events"])
        eventually(lambda: total(services, "deadline") == ended + 1,
                   "the replica's engine ended it at the deadline")
    else:
        assert isinstance(outcome["error"], DeadlineUnmeetable) and outcome["events"] == []
        assert "deadline cannot be met" in str(outcome["error"])
        eventually(lambda: sum(s.stats.refused["deadline"] for s in replicas(services).values()) == refused + 1,
                   "the replica's engine refused it for its deadline")
    # Through gRPC, the client's deadline.
    gate.unlink()
    try:
        with grpc.insecure_channel(services.cloud.target) as channel, pytest.raises(grpc.RpcError) as raised:
            list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
                prompt=PROMPT, seed=5, num_steps=STEPS, strategy="cloud"), timeout=1.0))
        error = raised.value
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED or (
            error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "deadline cannot be met" in error.details())
    finally:
        gate.touch()
    eventually(lambda: not any(s.running or s.queued for s in replicas(services).values()), "the replicas are idle")


def ray_ongoing_requests(app_name):
    """Requests Ray Serve counts as ongoing on the application's replicas (the replica actors' own figure)."""
    return sum(ray.get(ray.get_actor(actor["name"], namespace=actor["namespace"]).get_num_ongoing_requests.remote())
               for actor in ray.util.list_named_actors(all_namespaces=True)
               if actor["name"].startswith(f"SERVE_REPLICA::{app_name}#"))


def test_through_rays_grpc_proxy_an_expired_deadline_takes_the_request_out_of_the_replica_engine(services, gate):
    """Ray's proxy passes no client deadline on (docs/services.md): the replica's engine cannot refuse
    the request for it or end it at it. What does reach the replica: when the client's deadline
    expires, the proxy cancels its call to the replica, and the engine request leaves at its next
    step boundary, having made no model call after the one it was in."""
    ended = {outcome: total(services, outcome) for outcome in ("ok", "cancelled", "deadline")}
    calls = sum(s.stats.unet_calls for s in replicas(services).values())
    outcome = {}

    def call_through_the_proxy():
        with grpc.insecure_channel(services.proxy_target) as channel:
            try:
                list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
                    prompt=PROMPT, seed=6, num_steps=STEPS, strategy="cloud"), timeout=PROXY_DEADLINE_S,
                    metadata=(("application", services.app.config.app),)))
            except grpc.RpcError as exc:
                outcome["code"] = exc.code()

    gate.unlink()  # shut: the request's first UNet call waits in its replica
    try:
        client = threading.Thread(target=call_through_the_proxy)
        client.start()
        eventually(lambda: any(s.running for s in replicas(services).values()) or not client.is_alive(),
                   "the request runs on a replica")
        assert client.is_alive(), f"the request did not reach a replica's engine within its {PROXY_DEADLINE_S:g} s"
        client.join(PROXY_DEADLINE_S + 60)
        assert outcome["code"] == grpc.StatusCode.DEADLINE_EXCEEDED
        # Ray ended the replica's side of the call while the engine still holds the request at the gate.
        eventually(lambda: ray_ongoing_requests(services.app.config.app) == 0, "Ray cancelled the replica's call")
        assert sum(s.running for s in replicas(services).values()) == 1
    finally:
        gate.touch()
    eventually(lambda: total(services, "cancelled") == ended["cancelled"] + 1,
               "the replica's engine cancelled the request")
    assert (total(services, "ok"), total(services, "deadline")) == (ended["ok"], ended["deadline"])
    eventually(lambda: not any(s.running or s.queued for s in replicas(services).values()), "the replicas are idle")
    assert sum(s.stats.unet_calls for s in replicas(services).values()) == calls + 1  # only the call it was held in


def test_cancel_reaches_the_replica_engine(services, gate):
    before = total(services, "cancelled")
    gate.unlink()  # shut: the request's first UNet call waits in its replica
    try:
        with grpc.insecure_channel(services.cloud.target) as channel:
            call = cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
                prompt=PROMPT, seed=3, num_steps=STEPS, strategy="cloud"), timeout=120)
            eventually(lambda: any(s.running for s in replicas(services).values()), "the request runs on a replica")
            call.cancel()
            with pytest.raises(grpc.RpcError) as raised:
                list(call)
            assert raised.value.code() == grpc.StatusCode.CANCELLED
    finally:
        gate.touch()
    eventually(lambda: total(services, "cancelled") == before + 1, "the replica's engine cancelled the request")
    eventually(lambda: not any(s.running or s.queued for s in replicas(services).values()), "the replicas are idle")


@pytest.fixture
def adaptive(services, tiny_pair, tmp_path):
    """A second Ray cloud beside the module's (its own Serve application and replica) that runs one
    request at a time with load-adaptive quality from a queue of one, and an edge calling it."""
    cloud = services.on(start_cloud_ray(CloudConfig(
        port=0, model="tiny", ray=True, ray_app="ecdiff-adaptive", replicas=1, replica_cpus=1, torch_threads=1,
        max_batch=1, max_running=1, adaptive_quality=True, adaptive_queue=1,
        frontier_config=str(write_tiny_ladder(tmp_path / "frontier.toml")), predictors="none")))
    edge = services.on(start_edge(EdgeConfig(port=0, cloud=cloud.target, max_concurrency=3, **DIFFUSIONX_EDGE),
                                  tiny_pair[1]))
    try:
        yield SimpleNamespace(cloud=cloud, edge=edge, app=cloud.clients[0])
    finally:
        services.on(edge.stop(0))
        services.on(cloud.stop(0))


def test_adaptive_quality_on_the_replicas_serves_the_cheaper_point_and_says_so(adaptive, gate, reference, tiny_pair):
    """As on a plain cloud (tests/services/test_adaptive_quality.py): the first request waits at its first
    UNet call (the gate), the second waits in the replica's queue, so the third meets a queue of one."""

    def engine():
        (snapshot,) = adaptive.app.replica_snapshots().values()
        return snapshot

    def generate(seed):
        with grpc.insecure_channel(adaptive.edge.target,
                                   options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
            return list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(exact_generate_request(
                ASKED, prompt=PROMPT, seed=seed, num_steps=LADDER_STEPS, strategy="ecdiff", return_latents=True),
                timeout=120))

    results, threads = {}, []
    gate.unlink()
    try:
        for seed, waiting in ((1, 0), (2, 1), (3, 2)):
            threads.append(threading.Thread(target=lambda s=seed: results.__setitem__(s, generate(s))))
            threads[-1].start()
            eventually(lambda w=waiting: (engine().running, engine().queued) == (1, w), f"{waiting} requests wait")
    finally:
        gate.touch()
    for thread in threads:
        thread.join(120)
    for seed in (1, 2):
        assert not results[seed][-1].result.summary.downgraded
    events = results[3]
    summary = events[-1].result.summary
    assert summary.downgraded and summary.served_params == strategy_pb2.StrategyParams(**SERVED, cloud_steps=5)
    assert summary.params == strategy_pb2.StrategyParams(**ASKED, cloud_steps=5)  # what was asked for
    assert "1 requests queued (adaptive_queue 1)" in summary.downgrade_reason and not summary.degraded
    assert (summary.handoff_step, summary.cloud_calls, summary.edge_calls) == (8, 4, 2)
    assert any("cheaper EC-Diff point" in e.notice.message for e in events if e.HasField("notice"))
    # The replica's engine ran it as a batch of one: exactly the in-process core's run of the point served.
    expected = reference(ECDiff(**SERVED), PROMPT, 3, LADDER_STEPS)
    assert torch.equal(from_proto(events[-1].result.latents, max_elements=1 << 16), expected.latents)
    assert events[-1].result.image_png == png_bytes(decode_images(tiny_pair[1].pipe, expected.latents)[0])
    eventually(lambda: engine().stats.downgraded["queue"] == 1, "the replica's engine counts the downgrade")


def kill(replica_ids):
    """Kill the Serve replicas with these ids (Ray restarts them)."""
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if name.startswith("SERVE_REPLICA::") and (replica_ids is None or name.rsplit("#", 1)[-1] in replica_ids):
            ray.kill(ray.get_actor(name, namespace=actor["namespace"]), no_restart=False)


def cloud_steps(events):
    return [e.progress.step for e in events if e.HasField("progress") and e.progress.phase == edge_pb2.PHASE_CLOUD]


@contextlib.contextmanager
def partly_gated(gate, timestep):
    """While the yielded file exists, the replicas' UNet calls at timesteps below `timestep` wait."""
    below = gate.with_name(gate.name + ".below")
    written = below.with_name(below.name + ".tmp")
    written.write_text(str(timestep))
    written.rename(below)  # in one piece: replicas read it at every UNet call
    try:
        yield below
    finally:
        below.unlink(missing_ok=True)


def killed_mid_stream(services, call, reached, below):
    """Read `call` until `reached(events)`, kill the replica its request then waits on (held by the partial
    gate `below`), open that gate and read the rest: all its events, and the killed replica's id."""
    events = []
    for event in call:
        events.append(event)
        if reached(events):
            break
    board = board_until(services, lambda board: sum(s.running for s in board.values()) == 1,
                        "the request waits on a replica")
    serving = {r for r, s in board.items() if s.running}
    kill(serving)
    below.unlink()
    return events + list(call), serving


def test_a_replica_killed_mid_stream_the_stream_resumes_on_the_other_from_its_checkpoint(services, gate, reference,
                                                                                        tiny_pair):
    """Steps at timesteps below the 11th's wait: the request runs steps 0-9 (checkpointing the loop
    state after steps 4 and 9, resume_every 5), then waits on its replica, which is killed."""
    steps, before = 20, set(replicas(services))
    scheduler = DDIMScheduler.from_config(tiny_pair[0].pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    with partly_gated(gate, int(scheduler.timesteps[10]) + 1) as below:
        with grpc.insecure_channel(services.edge.target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("cloud", steps=steps, return_latents=True),
                                                                    timeout=180)
            events, serving = killed_mid_stream(services, call, lambda events: cloud_steps(events)[-1:] == [9], below)
        result = events[-1].result
        s = result.summary
        # The edge saw one stream, every cloud step once; the front end resumed from the checkpoint after step 9.
        assert not s.degraded and list(s.cloud_resumed_at) == [10] and s.cloud_calls == steps
        assert cloud_steps(events) == list(range(steps))
        expected = reference(CloudOnly(), PROMPT, 7, steps)
        assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
        # A new replica serves beside the survivor.
        board_until(services, lambda board: len(board) == 2 and not serving & set(board) and set(board) - before,
                    "Ray replaced the killed replica", timeout=120)


def test_a_refinement_whose_replica_is_killed_mid_stream_resumes_on_the_other_from_its_checkpoint(
        services, gate, tiny_pair):
    """At strength 1 the refinement runs all 8 steps; steps at timesteps below the 7th's wait, so it runs
    steps 0-5 (checkpointing the state entering step 5, resume_every 5), then waits on its replica, which
    is killed: the other replica runs steps 5-7 and the result is the uninterrupted refinement's."""
    steps = DIFFUSIONX_CLOUD["refine_steps"]
    cloud = tiny_pair[0]
    scheduler = DDIMScheduler.from_config(cloud.pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    preview = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(9))
    expected = Refiner(cloud.pipe, cloud.guidance, RefineConfig(num_steps=steps)).refine(PROMPT, 9, 1, preview, 1.0)
    # After a replaced replica: both on the board, nothing running.
    idle = board_until(services, lambda board: len(board) == 2 and not any(s.running or s.queued for s in board.values()),
                       "two idle replicas", timeout=120)
    calls_before = {r: s.stats.unet_calls for r, s in idle.items()}
    with partly_gated(gate, int(scheduler.timesteps[6]) + 1) as below:
        with grpc.insecure_channel(services.cloud.target) as channel:
            call = diffusionx_pb2_grpc.CloudRefinerStub(channel).Refine(diffusionx_pb2.RefineRequest(
                prompt=PROMPT, seed=9, round=1, latents=to_proto(preview), strength=1.0), timeout=180)
            events, serving = killed_mid_stream(
                services, call, lambda events: events[-1].HasField("step") and events[-1].step.index == 5, below)
    assert [e.step.index for e in events if e.HasField("step")] == list(range(steps))  # each step once
    refined = events[-1].refined
    assert torch.equal(from_proto(refined.latents, max_elements=1 << 16), expected.latents)
    assert (refined.start_step, refined.cloud_calls, refined.strength_source) == (0, steps, "request")
    assert list(refined.resumed_at) == [5]  # says where it resumed
    (survivor,) = set(calls_before) - serving
    # It resumed from the checkpoint: the survivor ran steps 5-7 only.
    eventually(lambda: replicas(services)[survivor].stats.unet_calls == calls_before[survivor] + 3,
               "the other replica reports the resumed steps' UNet calls")
    board_until(services, lambda board: len(board) == 2 and not serving & set(board),
                "Ray replaced the killed replica", timeout=120)


def test_every_replica_killed_mid_stream_the_stream_resumes_once_ray_restarted_them(services, gate, loading, reference):
    """Last in the module: it replaces the replicas. The request waits at its first step (the gate),
    so no checkpoint came: it starts again on a restarted replica.

    Health must say NOT_SERVING while no replica runs and SERVING again once one does. Serve notices
    each killed replica at its own next health check, so when Ray restarts replicas fast the first
    may be back before the second is noticed, and no moment without a running replica need exist.
    The restarted replicas therefore wait to load their model (the loading gate) until health said
    NOT_SERVING: that state then holds until the test lets them load, whatever the machine's speed."""
    first = set(replicas(services))
    gate.unlink()
    loading.unlink()
    try:
        with grpc.insecure_channel(services.edge.target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel, \
                grpc.insecure_channel(services.cloud.target) as cloud_channel:
            watch = health_pb2_grpc.HealthStub(cloud_channel).Watch(health_pb2.HealthCheckRequest(service=""),
                                                                    timeout=240)  # fail, never hang
            assert next(watch).status == SERVING
            call = edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("cloud", steps=20, return_latents=True),
                                                                    timeout=240)
            eventually(lambda: any(s.running for s in replicas(services).values()), "the request runs on a replica")
            kill(None)
            assert next(watch).status == NOT_SERVING  # both deaths noticed; their successors wait to load
            loading.touch()
            assert next(watch).status == SERVING  # a restarted replica loaded its model
            watch.cancel()
            gate.touch()
            events = list(call)
        result = events[-1].result
        s = result.summary
        # Resumed from the start (the router may first have tried the other dead replica: at most twice).
        assert result.image_png and not s.degraded and 1 <= len(s.cloud_resumed_at) <= 2
        assert set(s.cloud_resumed_at) == {0} and s.cloud_calls == 20
        expected = reference(CloudOnly(), PROMPT, 7, 20)
        assert torch.equal(from_proto(result.latents, max_elements=1 << 16), expected.latents)
        # The new replicas are in rotation: a whole generation through the cloud again.
        with grpc.insecure_channel(services.edge.target, options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
            again = list(edge_pb2_grpc.EdgeDenoiserStub(channel).Generate(request("hybrid"), timeout=120))[-1].result
        assert not again.summary.degraded and again.summary.cloud_calls == 3
        eventually(lambda: len(set(replicas(services)) - first) == 2, "two new replicas report metrics")
    finally:
        loading.touch()
        gate.touch()
