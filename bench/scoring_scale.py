"""Per-request scoring time as the intent set grows: 1,000 / 10,000 / 100,000 exemplars.

Synthetic data: random rows of ``--layers`` blocks of 384 (2, as ``model pull``'s graph
gives: encoder block 2 and the last), 100 exemplars per intent. For each
size and scoring, builds ``router.routing.index.Index`` from an ``IntentSet`` of that many
examples (HEAD trains its head at build; the build time is reported) and times
``index.scores`` + ``index.decide`` for one query (a noisy copy of an exemplar), the
work one Classify request adds after the model. numpy's BLAS runs on one thread, as in
the server (router/model/token_graph.py caps it next to onnxruntime). Each build runs in
its own process with a time limit (``--build-timeout``), so a slow HEAD build at 100,000 is reported
rather than waited for. Prints a table and writes it to bench/results/ (bench/_record.py).

    python bench/scoring_scale.py [--sizes 1000,10000,100000] [--per-intent 100]
        [--scorings head,topk_mean,nearest,centroid] [--queries 300] [--build-timeout 300]
        [--layers 2] [--no-record]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from typing import Any

import numpy as np
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

DIM = 384


def measure(size: int, per_intent: int, scoring: str, queries: int, layers: int, out: Any) -> None:
    """Runs in a child process; sends one dict through ``out``."""
    from threadpoolctl import threadpool_limits

    from router.routing.index import Index, IndexSettings, Scoring
    from router.routing.intents import Intent, IntentSet

    threadpool_limits(
        limits=1, user_api="blas"
    )  # as in the server (see router/model/token_graph.py)

    rng = np.random.default_rng(size)
    n_intents = size // per_intent
    intents = IntentSet(
        intents=tuple(
            Intent(name=f"intent_{k:05d}", examples=tuple(f"ex {k} {j}" for j in range(per_intent)))
            for k in range(n_intents)
        ),
        default_threshold=None,
        files=(),
        revision=f"synthetic-{size}",
    )
    width = DIM * layers
    vectors = rng.standard_normal((n_intents * per_intent, width)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    settings = IndexSettings(scoring=Scoring(scoring))
    start = time.perf_counter()
    index = Index(intents, vectors, settings, layers=layers)
    build = time.perf_counter() - start

    samples = []
    for i in range(queries + 20):
        q = vectors[rng.integers(len(vectors))] + 0.5 * rng.standard_normal(width).astype(
            np.float32
        ) / np.sqrt(width)
        q = (q / np.linalg.norm(q)).astype(np.float32)[None, :]
        t0 = time.perf_counter()
        index.decide(index.scores(q), 3)
        if i >= 20:  # warm-up
            samples.append((time.perf_counter() - t0) * 1e3)
    samples.sort()
    out.send(
        {
            "build_s": build,
            "p50_ms": statistics.median(samples),
            "p99_ms": samples[min(len(samples) - 1, int(0.99 * len(samples)))],
            "matrix_mb": index.matrix.nbytes / 2**20,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--per-intent", type=int, default=100)
    parser.add_argument("--scorings", default="head,topk_mean,nearest,centroid")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per index")
    parser.add_argument("--layers", type=int, default=2, help="hidden-state blocks per row")
    parser.add_argument(
        "--build-timeout", type=float, default=300.0, help="seconds per index: build + timing"
    )
    add_record_flag(parser)
    args = parser.parse_args()
    run = Run("scoring_scale", args)

    print(
        f"random unit rows, {args.layers} blocks of {DIM}, {args.per_intent} exemplars per intent; "
        f"one query per call, {args.queries} calls; scores + decide (top_k 3)"
    )
    print(
        f"{'exemplars':>9} {'intents':>7} {'scoring':<10} {'build s':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'matrix MB':>9}"
    )
    ctx = multiprocessing.get_context("spawn")
    rows: list[dict[str, Any]] = []
    for size in (int(s) for s in args.sizes.split(",")):
        for scoring in args.scorings.split(","):
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(
                target=measure,
                args=(size, args.per_intent, scoring, args.queries, args.layers, send),
            )
            proc.start()
            started = time.perf_counter()
            ready = receive.poll(args.build_timeout)
            head = f"{size:>9,} {size // args.per_intent:>7,} {scoring:<10}"
            row: dict[str, Any] = {
                "exemplars": size,
                "intents": size // args.per_intent,
                "scoring": scoring,
            }
            if ready:
                r = receive.recv()
                rows.append({**row, **r, "finished": True})
                print(
                    f"{head} {r['build_s']:>8.2f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} "
                    f"{r['matrix_mb']:>9.1f}",
                    flush=True,
                )
            else:
                stopped_after = time.perf_counter() - started
                rows.append({**row, "finished": False, "stopped_after_s": stopped_after})
                print(
                    f"{head} {'> ' + str(round(stopped_after)):>8}  "
                    "(build + timing did not finish in time; stopped)",
                    flush=True,
                )
                proc.kill()
            proc.join()
    run.finish({"dim": DIM, "layers": args.layers, "queries": args.queries, "rows": rows})


if __name__ == "__main__":
    main()
