"""`ecdiff serve cloud --ray` as deployed: a child process that starts its own local Ray instance,
serves CloudDenoiser from a replica (through our front end, and through Ray Serve's own gRPC proxy
with `--ray-grpc-port`), and on SIGTERM stops Serve and the Ray instance it started."""

import socket

import grpc
import psutil
import pytest

from ecdiff.services.process import ServiceProcess
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc
from ecdiff.wire.tensors import from_proto

pytestmark = pytest.mark.slow  # a Ray instance of its own: about a minute on 2 cores


def denoise(target, num_steps=6):
    with grpc.insecure_channel(target) as channel:
        return list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
            prompt="a small red circle at the top left", seed=1, num_steps=num_steps, strategy="cloud"), timeout=120))


def test_serve_cloud_ray_serves_and_stops_cleanly_with_its_ray_instance():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        proxy_port = probe.getsockname()[1]
    cloud = ServiceProcess("cloud", ["--ray", "--replicas", "1", "--replica-cpus", "1", "--model", "tiny",
                                     "--torch-threads", "1", "--predictors", "none", "--ray-grpc-port", str(proxy_port)],
                           startup_timeout=300)
    try:
        ray_processes = psutil.Process(cloud.proc.pid).children(recursive=True)
        assert any("raylet" in " ".join(p.cmdline()) for p in ray_processes)  # it started a local Ray instance
        events = denoise(cloud.target)
        assert events[-1].HasField("handoff") and events[-1].handoff.cloud_calls == 6
        # The replica, the workload, at the front end's priority (Ray's default puts workers at +15).
        replicas = [p for p in psutil.Process(cloud.proc.pid).children(recursive=True)
                    if "ServeReplica" in " ".join(p.cmdline())]
        assert replicas and {p.nice() for p in replicas} == {psutil.Process(cloud.proc.pid).nice()}
        # Ray's own proxy serves the same replica: the same handoff, bit for bit (a batch of one each).
        proxied = denoise(f"127.0.0.1:{proxy_port}")
        assert [e.step.index for e in proxied[:-1]] == list(range(6))
        assert from_proto(proxied[-1].handoff.latents, max_elements=1 << 16).equal(
            from_proto(events[-1].handoff.latents, max_elements=1 << 16))
        # The servicer runs in the replica there: our status codes and messages, set on Ray's context.
        with pytest.raises(grpc.RpcError) as refused:
            denoise(f"127.0.0.1:{proxy_port}", num_steps=5000)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "num_steps" in refused.value.details()
        assert cloud.stop(timeout=120) == 0
        log = cloud.log_path.read_text()
        assert '"msg": "ray serve stopped"' in log and '"msg": "stopped"' in log
        _, alive = psutil.wait_procs(ray_processes, timeout=60)
        assert not alive, f"Ray processes left running: {[p.cmdline()[:2] for p in alive]}"
    finally:
        cloud.kill()
