"""Write the golden outputs: `python tests/golden/record.py [CASE ...]` (all cases by default).

Run only on a commit whose outputs are the reference (the goldens were recorded on main before the
groundwork refactor); a refactor must never re-record them.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cases import CASES  # noqa: E402
from fingerprint import platform_fingerprint  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"

if __name__ == "__main__":
    torch.set_num_threads(1)
    DATA.mkdir(exist_ok=True)
    for name in sys.argv[1:] or CASES:
        tensors = {key: value.detach().cpu().contiguous().clone() for key, value in CASES[name]().items()}
        torch.save({"platform": platform_fingerprint(), "tensors": tensors}, DATA / f"{name}.pt")
        print(f"{name}: {len(tensors)} tensors")
