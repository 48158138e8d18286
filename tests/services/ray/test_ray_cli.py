"""`ecdiff serve cloud --ray` as deployed: a child process that starts its own local Ray instance,
serves CloudDenoiser from a replica, and on SIGTERM stops Serve and the Ray instance it started."""

import grpc
import psutil
import pytest

from ecdiff.services.process import ServiceProcess
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc

pytestmark = pytest.mark.slow  # a Ray instance of its own: about a minute on 2 cores


def test_serve_cloud_ray_serves_and_stops_cleanly_with_its_ray_instance():
    cloud = ServiceProcess("cloud", ["--ray", "--replicas", "1", "--replica-cpus", "1", "--model", "tiny",
                                     "--torch-threads", "1"], startup_timeout=300)
    try:
        ray_processes = psutil.Process(cloud.proc.pid).children(recursive=True)
        assert any("raylet" in " ".join(p.cmdline()) for p in ray_processes)  # it started a local Ray instance
        with grpc.insecure_channel(cloud.target) as channel:
            events = list(cloud_pb2_grpc.CloudDenoiserStub(channel).Denoise(cloud_pb2.DenoiseRequest(
                prompt="a small red circle at the top left", seed=1, num_steps=6, strategy="cloud"), timeout=120))
        assert events[-1].HasField("handoff") and events[-1].handoff.cloud_calls == 6
        assert cloud.stop(timeout=120) == 0
        log = cloud.log_path.read_text()
        assert '"msg": "ray serve stopped"' in log and '"msg": "stopped"' in log
        _, alive = psutil.wait_procs(ray_processes, timeout=60)
        assert not alive, f"Ray processes left running: {[p.cmdline()[:2] for p in alive]}"
    finally:
        cloud.kill()
