"""What bit-identical float results depend on besides our code: torch's build and the CPU kernels it picks."""

import torch


def platform_fingerprint() -> dict:
    return {"torch": str(torch.__version__), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads()}
