"""32 concurrent Denoise streams against one default cloud service, as an outside client opens
them (generated stubs only): every one gets its handoff, and the engine batched their calls.
Independent of speed: the model's first call is held until all 32 are in the engine."""

import asyncio

import grpc

from ecdiff.services.config import CloudConfig
from ecdiff.services.server import start_cloud
from ecdiff.v1 import cloud_pb2, cloud_pb2_grpc, strategy_pb2
from support.unet_calls import UNetCalls, wait_until

STREAMS = 32


def test_thirty_two_concurrent_streams_all_get_their_handoff(tiny_pair):
    async def main():
        server = await start_cloud(CloudConfig(port=0, predictors="none"), tiny_pair[0])
        try:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = cloud_pb2_grpc.CloudDenoiserStub(channel)

                async def one(seed):
                    strategy = "ecdiff" if seed % 2 else "cloud"
                    params = strategy_pb2.StrategyParams(pre_steps=2, k=2, alpha=0.5, switch_step=6) if seed % 2 \
                        else strategy_pb2.StrategyParams()
                    events = [e async for e in stub.Denoise(cloud_pb2.DenoiseRequest(
                        prompt=f"a small red circle {seed}", seed=seed, num_steps=8, strategy=strategy, params=params),
                        timeout=120)]
                    return events[-1]

                engine = server.servicer.runner.engine
                with UNetCalls(tiny_pair[0].pipe.unet, hold_at=1) as held:
                    streams = asyncio.gather(*(one(seed) for seed in range(STREAMS)))
                    await asyncio.to_thread(wait_until, lambda: engine.queued + engine.running == STREAMS,
                                            "every stream is in the engine")
                    held.release.set()
                    last = await streams
            return last, engine.stats
        finally:
            await server.stop(1)

    last, stats = asyncio.run(main())
    assert all(event.HasField("handoff") for event in last)
    assert {event.handoff.seed for event in last} == set(range(STREAMS))
    assert stats.refused == {} and stats.finished["ok"] == STREAMS
    assert max(stats.batch_sizes) > 1  # calls of different requests shared a batch
