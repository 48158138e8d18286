"""The gRPC front end's side of the Ray deployment: the cloud phase on a replica, through a
deployment handle with streaming responses, as the same typed events the local runner yields.

Leaving the iteration (the RPC was cancelled or ended) cancels the Ray call, which cancels the
replica's engine request at its next step boundary; the deadline is sent as seconds left. A
replica's own refusal (QueueFull, DeadlineUnmeetable, DeadlineExceeded, a ValueError) is re-raised
as itself, so the servicer maps it to the same status code as on a plain cloud; a replica that dies
mid-stream is `CloudPhaseLost` (UNAVAILABLE), and the edge finishes from its last latent (degraded).
"""

from __future__ import annotations

import time
from typing import AsyncIterator, Optional

from ray.exceptions import RayActorError, RayTaskError
from ray.serve.exceptions import ReplicaUnavailableError

from .cloud_phase import CloudHandoff, CloudJob, CloudPhaseLost, CloudStep


class RayCloudPhaseRunner:
    def __init__(self, handle) -> None:
        self.handle = handle.options(stream=True)

    async def run(self, job: CloudJob, deadline: Optional[float] = None,
                  request_id: str = "") -> AsyncIterator[CloudStep | CloudHandoff]:
        timeout_s = None if deadline is None else deadline - time.monotonic()
        response = self.handle.denoise.remote(job, timeout_s, request_id)
        try:
            async for event in response:
                yield event
        except RayTaskError as exc:
            # The replica's exception, with its type and message (not Ray's traceback dump).
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
        except (RayActorError, ReplicaUnavailableError) as exc:  # ActorDiedError, ActorUnavailableError too
            raise CloudPhaseLost(f"the cloud replica serving this request was lost mid-stream: {type(exc).__name__}") from None
        finally:
            response.cancel()
