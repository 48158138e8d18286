"""`ecdiff demo` (`make demo`): start the cloud and edge services on loopback, generate a few
prompts with every strategy through the gRPC EdgeDenoiser, write PNGs, a contact sheet and a
latency table, then stop both services.

Uses the shipped trained pair (a missing one stops the services with an error saying what to do),
or the tiny random models when asked for with --cloud-model tiny --edge-model tiny. With --secure,
every hop runs mutual TLS with tokens, on development credentials written under OUT/credentials.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from .cli_options import SIMULATED_LINK_MBPS, add_placement_arguments, placement_flags
from .conventions import DEFAULT_NUM_STEPS
from .images import contact_sheet
from .strategies import STRATEGY_NAMES

DEMO_PROMPTS = (
    "a small red circle at the top left on a white background",
    "a large blue square in the center on a black background",
    "a small yellow triangle at the bottom right on a gray background",
)
TILE = 192  # contact-sheet tile size in pixels


def secure_arguments(credentials: Path) -> tuple[list[str], list[str], dict]:
    """Flags of the cloud and the edge, and the SDK's arguments, for mutual TLS and tokens on every hop."""
    server = ["--tls-cert", str(credentials / "server.pem"), "--tls-key", str(credentials / "server-key.pem"),
              "--tls-client-ca", str(credentials / "ca.pem")]
    cloud_args = [*server, "--tokens-file", str(credentials / "cloud-tokens")]
    edge_args = [*server, "--tokens-file", str(credentials / "edge-tokens"), "--cloud-tls-ca", str(credentials / "ca.pem"),
                 "--cloud-tls-cert", str(credentials / "client.pem"), "--cloud-tls-key", str(credentials / "client-key.pem"),
                 "--cloud-token-file", str(credentials / "edge-to-cloud.token")]
    tls = {"tls_ca": str(credentials / "ca.pem"), "tls_cert": str(credentials / "client.pem"),
           "tls_key": str(credentials / "client-key.pem")}
    return cloud_args, edge_args, tls


def run(out_dir: Path, num_steps: int, seed: int, cloud_args: list[str], edge_args: list[str], secure: bool = False) -> int:
    from .clients.credentials import ChannelSecurity, read_token
    from .clients.sdk import EdgeClient
    from .services.dev_credentials import write_dev_credentials
    from .services.process import ServiceProcess

    out_dir.mkdir(parents=True, exist_ok=True)
    tls, token = {}, None
    if secure:
        credentials = write_dev_credentials(out_dir / "credentials")
        cloud_secure, edge_secure, tls = secure_arguments(credentials)
        cloud_args, edge_args = [*cloud_args, *cloud_secure], [*edge_args, *edge_secure]
        token = read_token(str(credentials / "user.token"))
        print(f"secure: mutual TLS and tokens on every hop (development credentials in {credentials}/)")
    print("starting the cloud and edge services on loopback ...")
    health = ChannelSecurity(**tls)  # health is open without a token; TLS still applies
    cloud = ServiceProcess("cloud", cloud_args, log_path=out_dir / "cloud.log", security=health)
    try:
        edge = ServiceProcess("edge", ["--cloud", cloud.target, *edge_args], log_path=out_dir / "edge.log", security=health)
    except BaseException:
        cloud.stop()
        raise
    print(f"cloud on {cloud.target}, edge on {edge.target} (JSON logs in {out_dir}/cloud.log, edge.log)")
    results = {}
    try:
        with EdgeClient(edge.target, **tls, token=token) as client:
            jobs = [(p, n) for p in DEMO_PROMPTS for n in STRATEGY_NAMES]
            for prompt, name in tqdm(jobs, desc="demo", unit="image"):
                started = time.perf_counter()
                result = client.generate(prompt, seed=seed, num_steps=num_steps, strategy=name)
                results[(prompt, name)] = (result, time.perf_counter() - started)
                for notice in result.notices:
                    tqdm.write(f"notice: {notice}")
                result.save(out_dir / f"{DEMO_PROMPTS.index(prompt)}-{name}.png")
    finally:
        codes = {service.role: service.stop() for service in (edge, cloud)}  # SIGTERM: graceful stop
    bad = {role: code for role, code in codes.items() if code != 0}
    print("services stopped" + (f" with errors {bad}; see the logs" if bad else " cleanly (SIGTERM)"))
    images = {key: Image.open(io.BytesIO(r.image_png)).convert("RGB").resize((TILE, TILE)) for key, (r, _) in results.items()}
    contact_sheet([[images[(p, n)] for n in STRATEGY_NAMES] for p in DEMO_PROMPTS]).save(out_dir / "contact_sheet.png")
    table = latency_table(results, num_steps, seed)
    (out_dir / "latency.md").write_text(table + "\n")
    summary = next(iter(results.values()))[0].summary
    print(f"\nmodels: cloud {summary.cloud_model or '?'}, edge {summary.edge_model}"
          + (" (tiny RANDOM models: the images are noise; the costs are real)" if summary.edge_model.startswith("tiny") else ""))
    print(table)
    print(f"\ncontact sheet: one row per prompt, columns left to right: {', '.join(STRATEGY_NAMES)}")
    print(f"images, contact sheet and latency table in {out_dir}/")
    return 0


def latency_table(results: dict, num_steps: int, seed: int) -> str:
    lines = [f"{len(DEMO_PROMPTS)} prompts, seed {seed}, {num_steps} DDIM steps, over gRPC on loopback; medians",
             "",
             "| strategy | client s/image | speedup vs cloud | cloud compute s | transfer s | edge compute s | decode s "
             "| cloud calls | approx steps | edge calls | bytes from cloud |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    cloud_median = statistics.median(t for (p, n), (_, t) in results.items() if n == "cloud")
    for name in STRATEGY_NAMES:
        rows = [(r.summary, t) for (p, n), (r, t) in results.items() if n == name]
        med = lambda f: statistics.median(f(s, t) for s, t in rows)  # noqa: E731
        client = med(lambda s, t: t)
        s0 = rows[0][0]
        lines.append(
            f"| {name} | {client:.3f} | {cloud_median / client:.2f}x | {med(lambda s, t: s.cloud_compute_seconds):.3f} "
            f"| {med(lambda s, t: s.transfer_seconds):.3f} | {med(lambda s, t: s.edge_compute_seconds):.3f} "
            f"| {med(lambda s, t: s.decode_seconds):.3f} | {s0.cloud_calls} | {s0.approx_steps} | {s0.edge_calls} "
            f"| {int(med(lambda s, t: s.bytes_from_cloud))} |")
    return "\n".join(lines)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="start both services, run every strategy, print what each cost",
                                   description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default: out/demo)")
    parser.add_argument("--steps", type=int, default=DEFAULT_NUM_STEPS, help="denoising steps (default: 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the initial latents (default: 0)")
    parser.add_argument("--cloud-model",
                        help="cloud model name or path ('tiny' for random weights; default: the shipped toyworld-cloud)")
    parser.add_argument("--edge-model",
                        help="edge model name or path ('tiny' for random weights; default: the shipped toyworld-edge)")
    parser.add_argument("--bandwidth-mbps", type=float, default=SIMULATED_LINK_MBPS,
                        help=f"shape the edge<->cloud hop (default {SIMULATED_LINK_MBPS}, EC-Diff's WiFi; 0 = unshaped)")
    parser.add_argument("--torch-threads", type=int, default=1, help="torch threads per service (default 1)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="one-way latency on that hop (default 0)")
    add_placement_arguments(parser)
    parser.add_argument("--secure", action="store_true",
                        help="mutual TLS and bearer tokens on every hop, with fresh development credentials (default: off, plaintext loopback)")
    parser.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    from .placement import Placement, PlacementError

    try:  # here, before any service starts: a placement this machine lacks is the user's error, not a crash
        Placement.resolve(args.device, args.dtype)
    except PlacementError as exc:
        print(f"ecdiff demo: error: {exc}", file=sys.stderr)
        return 2
    # Both services share this machine's cores: one torch thread each avoids oversubscription.
    threads = ["--torch-threads", str(args.torch_threads), *placement_flags(args)]
    cloud_args = (["--model", args.cloud_model] if args.cloud_model else []) + threads
    edge_args = (["--model", args.edge_model] if args.edge_model else []) + threads + [
        "--bandwidth-mbps", str(args.bandwidth_mbps), "--latency-ms", str(args.latency_ms)]
    try:
        return run(args.out, args.steps, args.seed, cloud_args, edge_args, args.secure)
    except (RuntimeError, TimeoutError) as exc:  # a service that did not start says why in its log
        print(f"ecdiff demo: {exc}", file=sys.stderr)
        return 2
