import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "ecdiff" / "v1"


def test_generated_code_matches_the_protos(tmp_path):
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "protos" / "ecdiff" / "v1").glob("*.proto"))
    assert protos, "no .proto files found"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", f"--python_out={tmp_path}",
                    f"--grpc_python_out={tmp_path}", f"--pyi_out={tmp_path}", *protos], cwd=ROOT, check=True)
    fresh = {p.name: p.read_text() for p in (tmp_path / "ecdiff" / "v1").iterdir()}
    checked_in = {p.name: p.read_text() for p in GENERATED.iterdir() if p.is_file() and p.name != "__init__.py"}
    stale = sorted(name for name in fresh.keys() | checked_in.keys() if fresh.get(name) != checked_in.get(name))
    assert not stale, f"generated code in ecdiff/v1 is out of date with protos/ ({', '.join(stale)}): run `make protos`"
