"""Both services in this process, on loopback, on a background event loop (tests, notebooks).

    with BackgroundServices(cloud_model, edge_model) as services:
        channel = grpc.insecure_channel(services.edge_target)
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import Optional

from ecdiff.loading import LoadedModel

from .config import CloudConfig, EdgeConfig
from .server import RunningServer, start_cloud, start_edge


class BackgroundServices:
    def __init__(self, cloud_model: LoadedModel, edge_model: LoadedModel,
                 cloud_config: Optional[CloudConfig] = None, edge_config: Optional[EdgeConfig] = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ecdiff-services", daemon=True)
        self.thread.start()
        cloud_config = replace(cloud_config or CloudConfig(), port=0)
        self.cloud: RunningServer = self.call(start_cloud(cloud_config, cloud_model))
        try:
            edge_config = replace(edge_config or EdgeConfig(), port=0, cloud=self.cloud.target)
            self.edge: RunningServer = self.call(start_edge(edge_config, edge_model))
        except BaseException:
            self.call(self.cloud.stop(0))
            self._close_loop()
            raise

    @property
    def cloud_target(self) -> str:
        return self.cloud.target

    @property
    def edge_target(self) -> str:
        return self.edge.target

    def call(self, coroutine, timeout: float = 120.0):
        """Run a coroutine on the services' loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, grace: float = 1.0) -> None:
        try:
            self.call(self.edge.stop(grace))
            self.call(self.cloud.stop(grace))
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def __enter__(self) -> "BackgroundServices":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
