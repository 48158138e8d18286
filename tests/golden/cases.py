"""Golden cases: outputs recorded from main before the groundwork refactor (issue 14).

Each case returns a dict of named tensors (latents, or PNG bytes as uint8). `record.py` writes them
under data/; `test_golden.py` recomputes them and requires bit-identical tensors. Only the calls
into the library may change when its API changes; the recorded values never do.
"""

from __future__ import annotations

import grpc
import torch

from ecdiff.loading import load_pair
from ecdiff.strategies import CloudOnly, ECDiff, EdgeOnly, HybridSD

PROMPT = "a small red circle at the top left on a white background"
SEED = 1234

# name -> (strategy for T steps, scheduler kind); T = 12 on the tiny pair, 50 on the shipped pair.
def sample_strategies(num_steps: int):
    if num_steps == 50:
        ecdiff = ECDiff(7, 2, 0.4, 36)
        twice = ECDiff(7, 2, 0.4, 36, corrections=2)
        hybrid = HybridSD(25)
    else:
        ecdiff = ECDiff(3, 2, 0.4, 9)
        twice = ECDiff(3, 2, 0.4, 9, corrections=2)
        hybrid = HybridSD(5)
    return {
        "cloud": (CloudOnly(), "ddim"),
        "edge": (EdgeOnly(), "ddim"),
        "hybrid": (hybrid, "ddim"),
        "ecdiff": (ecdiff, "ddim"),
        "correct-twice": (twice, "ddim"),
        "euler": (ecdiff, "euler"),
        "dpm++": (ecdiff, "dpm++"),
    }


def pair_for(which: str):
    return load_pair(tiny=True) if which == "tiny" else load_pair()


def steps_for(which: str) -> int:
    return 12 if which == "tiny" else 50


def sample_case(which: str) -> dict[str, torch.Tensor]:
    from ecdiff.preparation import prepare_run

    pair = pair_for(which)
    num_steps = steps_for(which)
    out = {}
    for name, (strategy, scheduler) in sample_strategies(num_steps).items():
        result = prepare_run(strategy, prompts=PROMPT, num_steps=num_steps, guidance=pair.guidance,
                             cloud=pair.cloud, edge=pair.edge, seeds=SEED, scheduler=scheduler).sample()
        out[f"{name}/latents"] = result.latents
        out[f"{name}/handoff"] = result.handoff
    return out


def search_case() -> dict[str, torch.Tensor]:
    """The search's timed generation (decoded picture) and the noise curve, tiny pair."""
    import io

    from ecdiff.search.generate import generate
    from ecdiff.search.noise_curve import noise_differences
    from ecdiff.search.prompts import PromptItem

    pair = load_pair(tiny=True)
    out = {}
    for name, (strategy, scheduler) in sample_strategies(12).items():
        picture = generate(pair, strategy, PROMPT, SEED, 12, scheduler).image
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        out[f"generate/{name}"] = torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)
    items = [PromptItem(PROMPT, SEED), PromptItem("a large blue square in the middle on a black background", 99)]
    curve = noise_differences(pair, items, 12, progress=False)
    out["noise_curve/per_prompt"] = torch.tensor(curve.per_prompt, dtype=torch.float64)
    return out


def _png(data: bytes) -> torch.Tensor:
    return torch.frombuffer(bytearray(data), dtype=torch.uint8)


def services_case() -> dict[str, torch.Tensor]:
    """EdgeDenoiser.Generate for every strategy and a DiffusionX session, tiny pair, over loopback."""
    from ecdiff.loading import load_model
    from ecdiff.services.background import BackgroundServices
    from ecdiff.services.config import CloudConfig, EdgeConfig
    from ecdiff.wire.tensors import from_proto
    from ecdiff.v1 import diffusionx_pb2, diffusionx_pb2_grpc, edge_pb2, edge_pb2_grpc, strategy_pb2, tensor_pb2

    # the paper's rule named: the recording predates the rules, and the config's default may change
    params = {"ecdiff": dict(pre_steps=2, k=2, alpha=0.5, switch_step=6, rule="paper"), "hybrid": dict(cloud_steps=3),
              "cloud": {}, "edge": {}}
    out = {}
    models = load_model("cloud", "tiny"), load_model("edge", "tiny")
    with BackgroundServices(*models, CloudConfig(predictors="none", refine_steps=8),
                            EdgeConfig(predictors="none", preview_steps=6, session_db=":memory:")) as services:
        with grpc.insecure_channel(services.edge_target,
                                   options=[("grpc.max_receive_message_length", 16 << 20)]) as channel:
            edge = edge_pb2_grpc.EdgeDenoiserStub(channel)
            for name, values in params.items():
                request = edge_pb2.GenerateRequest(
                    prompt=PROMPT, seed=SEED, num_steps=8, strategy=name,
                    params=strategy_pb2.StrategyParams(**values), return_latents=True,
                    transfer_dtype=tensor_pb2.DTYPE_FLOAT32, transfer_encoding=tensor_pb2.ENCODING_RAW)
                result = list(edge.Generate(request, timeout=120))[-1].result
                out[f"generate/{name}/latents"] = from_proto(result.latents, max_elements=10**6)
                out[f"generate/{name}/png"] = _png(result.image_png)
            sessions = diffusionx_pb2_grpc.EdgeSessionsStub(channel)
            first = list(sessions.StartSession(diffusionx_pb2.StartSessionRequest(
                prompt=PROMPT, seed=SEED, return_latents=True), timeout=120))[-1].result
            sid = first.session_id
            second = list(sessions.Revise(diffusionx_pb2.ReviseRequest(
                session_id=sid, prompt="a small blue circle at the top left on a white background", strength=0.5,
                return_latents=True), timeout=120))[-1].result
            third = list(sessions.Revise(diffusionx_pb2.ReviseRequest(
                session_id=sid, prompt="a large blue circle at the top left on a white background",
                return_latents=True), timeout=120))[-1].result
            final = list(sessions.Finalize(diffusionx_pb2.FinalizeRequest(
                session_id=sid, approximate=True, return_latents=True), timeout=120))[-1].result
            for name, result in (("round0", first), ("round1", second), ("round2", third), ("final", final)):
                out[f"session/{name}/latents"] = from_proto(result.latents, max_elements=10**6)
                out[f"session/{name}/png"] = _png(result.image_png)
    return out


CASES = {
    "sample-tiny": lambda: sample_case("tiny"),
    "sample-shipped": lambda: sample_case("shipped"),
    "search-tiny": search_case,
    "services-tiny": services_case,
}
