"""Autoscaling on Ray Serve (services/ray_server.py): a cloud started with one replica (bounds 1..2,
one ongoing request per replica as the target, no upscale delay) grows to two replicas under a
steady load of concurrent streams, every request is served meanwhile, and the new replica serves.
Once stopped, it leaves nothing behind that would start Ray again in this process."""

import asyncio
import threading
import time

import grpc
import pytest
import ray
from ray.serve._private.constants import RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S

from ecdiff.services.config import CloudConfig
from ecdiff.services.ray_server import start_cloud_ray
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc
from support.unet_calls import wait_until

# Ray decides to scale on ongoing requests averaged over its look-back window: about 3 minutes on
# 2 cores, so out of `make test`; run with `pytest -m heavy tests/services/ray`.
pytestmark = [pytest.mark.slow, pytest.mark.heavy]

CLIENTS = 4


def test_one_replica_scales_to_two_under_load():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def on(coroutine, timeout=300):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout)

    cloud = None
    try:
        cloud = on(start_cloud_ray(CloudConfig(port=0, model="tiny", ray=True, replicas=1, min_replicas=1,
                                               max_replicas=2, target_ongoing_requests=1, upscale_delay_s=0,
                                               torch_threads=1, predictors="none")))
        app = cloud.clients[0]
        (first,) = app.replica_snapshots()
        stop, statuses = threading.Event(), []

        def client(index: int) -> None:
            with grpc.insecure_channel(cloud.target) as channel:
                stub, n = cloud_pb2_grpc.CloudDenoiserStub(channel), 0
                while not stop.is_set():
                    try:
                        events = list(stub.Denoise(cloud_pb2.DenoiseRequest(
                            prompt="a small red circle at the top left", seed=1000 * index + n, num_steps=50,
                            strategy="cloud"), timeout=120))
                        statuses.append("OK" if events[-1].HasField("handoff") else "NO_HANDOFF")
                    except grpc.RpcError as exc:
                        statuses.append(exc.code().name)
                    n += 1

        clients = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for c in clients:
            c.start()
        try:
            def two_replicas() -> bool:
                time.sleep(0.5)
                return len(app.replica_snapshots()) == 2

            wait_until(two_replicas, "Ray Serve added a second replica", timeout=240)
            (second,) = set(app.replica_snapshots()) - {first}

            def second_serves() -> bool:
                time.sleep(0.5)
                return app.replica_snapshots()[second].stats.unet_calls > 0

            wait_until(second_serves, "the new replica serves requests", timeout=120)
        finally:
            stop.set()
            for c in clients:
                c.join(180)
        assert statuses and set(statuses) == {"OK"}, statuses
    finally:
        if cloud is not None:
            on(cloud.stop(0))
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        ray.shutdown()
    # An autoscaling handle's router pushes metrics from a thread of this process: if it outlived the
    # stop, its next push would start a new local Ray here (and the next ray.init would fail).
    time.sleep(RAY_SERVE_HANDLE_AUTOSCALING_METRIC_PUSH_INTERVAL_S + 2)
    assert not ray.is_initialized()
