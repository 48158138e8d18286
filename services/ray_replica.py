"""One Ray Serve replica of the cloud: the model and its batching `DenoisingEngine`, a thin adapter.

The constructor loads the cloud model and starts the engine (so a replica is ready only once it can
serve). `denoise` runs one cloud phase on the engine and streams its typed events (`CloudStep`s, one
carrying the loop's state every `resume_every` steps, then `CloudHandoff`: dataclasses and host
tensors, no gRPC objects; in lists of the events ready within `stream_window_s`, to send fewer Ray items), from
the seeded start or from such a checkpoint (`resume`: the front end resumes a stream whose replica
died); `refine` runs one DiffusionX refinement on the same engine
(`RefineStep`s, checkpointed alike, then the `Refinement`), from its start or from such a checkpoint.
The caller's gRPC front end converts them.
Cancelling the stream (Ray cancels the generator) cancels the engine request at its next step
boundary; the deadline travels as seconds left, since replicas may run on other machines' clocks.
Every `REPLICA_STATS_EVERY_S` (services/config.py) the replica sends its engine's snapshot to the stats
board (services/ray_stats.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import AsyncIterator, Optional

import ray
import torch
from ray import serve

from ecdiff.conditioning import denoising_model
from ecdiff.diffusionx.refine import RefineCheckpoint, RefineConfig
from ecdiff.engine.config import EngineConfig
from ecdiff.engine.core import DenoisingEngine
from ecdiff.loading import load_model
from ecdiff.placement import AUTO, Placement, PlacementError, check_device_name
from ecdiff.sampling import SamplerState

from .cloud_phase import CloudHandoff, CloudJob, CloudPhaseRunner, CloudStep
from .config import REPLICA_STATS_EVERY_S
from .identity import ModelIdentity, identity_of
from .logs import request_id as request_id_var
from .ray_stats import StatsBoardClient
from .ray_wire import use_numpy_tensors
from .refine_phase import RefineJob, RefinePhaseRunner, RefineStep, cloud_refiner_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica needs to start (sent to it by Ray)."""

    model: Optional[str]  # as `ecdiff.loading.load_model` takes it; None = the shipped cloud model
    # Resolved on the replica's own machine (`ecdiff.placement`): "auto" there may be a GPU the front end lacks.
    device: str
    dtype: str
    guidance: Optional[float]  # None: the model's own default
    engine: EngineConfig
    refine: RefineConfig
    predictors: Optional[str]  # DiffusionX's cloud predictor, as ServerConfig.predictors
    resume_every: int  # checkpoint the loop state of cloud phases and refinements every n steps; 0: never
    stream_window_s: float  # events of a stream that follow each other within this many seconds travel together
    torch_threads: int
    stats_board: str  # the stats board actor's name


class CloudReplica:
    """Deployed with `serve.deployment(CloudReplica)` (services/ray_server.py): decorating it here would
    hide the class from pickling by reference, and Ray would ship it by value."""

    def __init__(self, spec: ReplicaSpec) -> None:
        torch.set_num_threads(spec.torch_threads)
        use_numpy_tensors()  # what this replica streams (the front end sends tensors only to resume: rare)
        model = load_model("cloud", spec.model, placement=Placement.resolve(replica_device(spec.device, ray.get_gpu_ids()),
                                                                            spec.dtype),
                           guidance=spec.guidance)
        self._identity = identity_of(model)
        self.engine = DenoisingEngine(denoising_model(model.pipe), spec.engine, name="cloud")
        # The engine makes every model call; these threads only prepare runs (prompt encoding).
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ecdiff-cloud-prepare")
        self.runner = CloudPhaseRunner(model, self.engine, self.executor, spec.resume_every)
        refiner = cloud_refiner_of(model, spec.refine, spec.predictors)
        self.refiner = RefinePhaseRunner(refiner, self.engine, self.executor, spec.resume_every)
        self.replica = serve.get_replica_context().replica_id.unique_id
        self.stream_window_s = spec.stream_window_s
        self._stop = threading.Event()
        self._board = StatsBoardClient(spec.stats_board)
        self._board.put(self.replica, self.engine.snapshot())  # reachable from the first scrape on
        threading.Thread(target=self._publish, name="ecdiff-replica-stats", daemon=True).start()
        log.info("replica ready", extra={"fields": {"replica": self.replica, "model": model.name,
                                                    "placement": model.placement.describe(),
                                                    "guidance": model.guidance, "torch_threads": spec.torch_threads}})

    def identity(self) -> ModelIdentity:
        return self._identity

    async def denoise(self, job: CloudJob, timeout_s: Optional[float], request_id: str,
                      resume: Optional[SamplerState] = None):
        """`resume`: a checkpoint this or another replica streamed; the run continues from it."""
        async for batch in _batches(self.runner.run(job, _deadline(timeout_s, request_id), request_id, resume),
                                    self.stream_window_s):
            yield [_on_host(event) for event in batch]

    async def refine(self, job: RefineJob, timeout_s: Optional[float], request_id: str,
                     resume: Optional[RefineCheckpoint] = None):
        """`resume`: a checkpoint this or another replica streamed; the refinement continues from it."""
        async for batch in _batches(self.refiner.run(job, _deadline(timeout_s, request_id), request_id, resume),
                                    self.stream_window_s):
            yield [_on_host(event) for event in batch]

    def check_health(self) -> None:
        """Ray Serve calls this periodically; raising marks the replica unhealthy and Ray replaces it."""
        if not self.engine.alive:
            raise RuntimeError("the engine thread stopped")

    def _publish(self) -> None:
        while not self._stop.wait(REPLICA_STATS_EVERY_S):
            self._board.put(self.replica, self.engine.snapshot())

    def __del__(self) -> None:  # Ray Serve calls it when it stops the replica
        self._stop.set()
        self.engine.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


def replica_device(device: str, gpu_ids) -> str:
    """The device a replica that Ray gave `gpu_ids` runs on: Ray leaves every GPU of its machine visible
    to a replica it reserved none for (`replica_gpus` 0), so such a replica would share a GPU unseen by
    Ray's scheduling; it runs on the CPU instead ("auto"), and asking it for CUDA is an error."""
    if gpu_ids:
        return device
    name = check_device_name(device)
    if name == AUTO:
        return "cpu"
    if name.startswith("cuda"):
        raise PlacementError(f"device {device!r}, but Ray reserved no GPU for this replica: give replicas GPUs "
                             "(--replica-gpus, e.g. 1; fractions share one)")
    return device


async def _batches(events: AsyncIterator, window_s: float = 0.0) -> AsyncIterator[list]:
    """`events` in lists: those ready together, and with `window_s` > 0 those that follow the first of
    a list within `window_s` seconds (the stream's end is never held back). Every item of a Ray stream
    costs a serialisation and a message each way, in the replica's process (whose GIL the engine
    needs) and the front end's; one engine iteration ends several steps of a request at once (an
    approximated run and the model step after it), and a window spanning iterations joins theirs. The
    replica's own exception is raised after the events before it; leaving (Ray cancelled the call)
    closes `events`, which cancels the engine request."""
    ready: asyncio.Queue = asyncio.Queue()
    done = object()
    loop = asyncio.get_running_loop()

    async def pump() -> None:
        try:
            async for event in events:
                ready.put_nowait(event)
        except Exception as exc:  # noqa: BLE001 - the replica's refusal or failure, passed on in order
            ready.put_nowait(_Raised(exc))
        finally:
            ready.put_nowait(done)

    pumping = asyncio.create_task(pump())
    try:
        while True:
            batch = [await ready.get()]
            flush_at = loop.time() + window_s
            while batch[-1] is not done and not isinstance(batch[-1], _Raised):
                if not ready.empty():
                    batch.append(ready.get_nowait())
                    continue
                left = flush_at - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(ready.get(), left))
                except asyncio.TimeoutError:
                    break
            last = batch[-1]  # the end (done, or the replica's exception) can only come last
            ended = last is done or isinstance(last, _Raised)
            events_now = batch[:-1] if ended else batch
            if events_now:
                yield events_now
            if isinstance(last, _Raised):
                raise last.exception
            if ended:
                return
    finally:
        pumping.cancel()
        await asyncio.wait([pumping])  # its end, without swallowing a cancellation of this task
        await events.aclose()


@dataclass(frozen=True)
class _Raised:
    exception: Exception


def _deadline(timeout_s: Optional[float], request_id: str) -> Optional[float]:
    """The request's deadline on this machine's clock (it travels as seconds left)."""
    request_id_var.set(request_id)
    return None if timeout_s is None else time.monotonic() + timeout_s


def _on_host(event):
    """Tensors leave a replica on the host: the front end may have no GPU to load a CUDA tensor onto."""
    if isinstance(event, CloudStep):
        return replace(event, latents=None if event.latents is None else event.latents.cpu(),
                       checkpoint=None if event.checkpoint is None else event.checkpoint.map(torch.Tensor.cpu))
    if isinstance(event, CloudHandoff):
        return replace(event, latents=event.latents.cpu())
    if isinstance(event, RefineStep) and event.checkpoint is not None:
        checkpoint = event.checkpoint
        return replace(event, checkpoint=replace(checkpoint, state=checkpoint.state.map(torch.Tensor.cpu)))
    return event  # a Refinement's latents are on the host already
