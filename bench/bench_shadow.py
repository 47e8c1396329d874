"""Benchmark: what shadow traffic costs the caller of the stable pods.

    .venv/bin/python bench/bench_shadow.py [--rounds 4] [--requests 300]

One stable runtime and one candidate runtime (the same breast-cancer model as bench_runtime.py,
registered in a real `mlflow server` on 127.0.0.1; the candidate under another version label).
The stable one's shadow config file is rewritten between blocks: off (the baseline, measured
in the same run and the same process), 10% and 100% of the requests copied to the candidate.
Blocks are interleaved and their order rotated every round, so background load hits all three.

On this 2-core machine the candidate runs beside the stable server and the load generator:
at 100% the machine does the work twice, so what the caller sees then is mostly CPU
contention, not waiting (the copy is queued after the answer is sent). The copies' outcomes
(ok, dropped by the full queue, errors) are read from the stable server's /metrics.
Only 127.0.0.1 is used. Results are printed and written to bench/results/shadow.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import bench_runtime as br  # noqa: E402  (the model, servers and load generator)

SETTINGS = {"off": 0, "10%": 10, "100%": 100}


def copies(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("mlops_shadow_requests_total{"):
            outcome = line.split('outcome="', 1)[1].split('"', 1)[0]
            out[outcome] = out.get(outcome, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds")
    ap.add_argument("--requests", type=int, default=300, help="requests per block")
    args = ap.parse_args(argv)

    from tests.support.mlflow_server import start_mlflow

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    print(f"# workdir {work}; starting mlflow server ...", flush=True)
    registry = start_mlflow(work / "mlflow")
    config = work / "shadow.json"
    servers: list[br.Server] = []
    try:
        model_uri, rows, columns = br.register_model(registry.url)
        body = json.dumps({"dataframe_split": {"columns": columns, "data": rows[:1]}}).encode()
        br.PROBE_BODY = body
        made = br.make_servers(model_uri, registry.url, "small")
        base = made["runtime"]
        stable = br.Server(
            "stable", base.argv, dict(base.env, MLOPS_SHADOW_FILE=str(config)), base.port
        )
        cand_port = br.free_port()
        candidate = br.Server(
            "candidate",
            base.argv,
            dict(base.env, PORT=str(cand_port), MLOPS_MODEL_VERSION="candidate"),
            cand_port,
        )
        servers = [stable, candidate]
        for s in servers:
            s.start(work)

        scenarios = [("1 row, c=1", 1, args.requests), ("1 row, c=8", 8, args.requests * 2)]
        measured: dict[tuple[str, str], list[br.Result]] = {}
        names = list(SETTINGS)
        for rnd in range(args.rounds):
            order = names[rnd % 3 :] + names[: rnd % 3]
            for setting in order:
                target = {"target": f"http://127.0.0.1:{cand_port}", "version": "candidate"}
                config.write_text(json.dumps({**target, "percent": SETTINGS[setting]}))
                time.sleep(2.2)  # the runtime re-reads the file every 2 s
                for name, conc, total in scenarios:
                    measured.setdefault((name, setting), []).append(
                        br.run_load(stable.port, body, conc, total)
                    )
            print(f"# round {rnd + 1}/{args.rounds} done", flush=True)
        time.sleep(6)  # the last copies (timeout 5 s) are counted
        outcomes = copies(stable.port)

        print("\n## shadow traffic: the stable server's callers, shadow off vs on\n")
        hdr = (
            f"| {'scenario':<11} | {'shadow':>6} | {'p50':>9} | {'p99':>9} | {'rps':>6} "
            f"| {'p50 ratio':>9} | {'rps ratio':>9} |"
        )
        print(hdr)
        print("|" + "|".join("-" * len(c) for c in hdr.split("|")[1:-1]) + "|")
        report: list[dict[str, object]] = []
        for name, _, _ in scenarios:
            off = br.summarise(measured[(name, "off")])
            for setting in names:
                m = br.summarise(measured[(name, setting)])
                print(
                    f"| {name:<11} | {setting:>6} | {m['p50_ms']:>6.2f} ms "
                    f"| {m['p99_ms']:>6.2f} ms | {m['rps']:>6.0f} "
                    f"| {m['p50_ms'] / off['p50_ms']:>8.2f}x | {m['rps'] / off['rps']:>8.2f}x |"
                )
                report.append({"scenario": name, "shadow": setting, **m})
        errors = sum(int(r["errors"]) for r in report)  # type: ignore[call-overload]
        print(f"\nratios: against shadow off in the same run; caller errors: {errors}")
        print(f"copies sent by the stable server, by outcome: {outcomes}")
        out = {"blocks": report, "copies": outcomes, "seconds": time.monotonic() - started}
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "shadow.json").write_text(json.dumps(out, indent=1))
        print(f"(total {out['seconds']:.0f} s; results in bench/results/shadow.json)")
        return 0
    finally:
        for s in servers:
            s.stop()
        registry.stop()


if __name__ == "__main__":
    sys.exit(main())
