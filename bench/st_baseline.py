"""sentence-transformers on torch CPU: the usual choice, measured on the same texts.

Runs ONLY in the benchmark's own venv (bench/.venv-st, made by
``python bench/throughput.py --setup-st``); the project never depends on torch.
bench/throughput.py runs this as a subprocess and reads the one JSON object it prints
(and records it in its own result file; this script writes none):

* ``single``: one text per ``encode`` call, as a naive service does it (sentences/s,
  and p50/p99 of a call);
* ``batched``: ``encode(texts, batch_size=32)``, the library's own length-sorted batching.

    bench/.venv-st/bin/python bench/st_baseline.py --model DIR --texts FILE.json
        [--duration 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="sentence-transformers dir")
    parser.add_argument("--texts", type=Path, required=True, help="JSON list of strings")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per mode")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(args.threads)
    texts: list[str] = json.loads(args.texts.read_text())
    model = SentenceTransformer(str(args.model), device="cpu")
    model.encode(texts[:64], batch_size=32)  # warm-up

    # (a) one text per call
    calls: list[float] = []
    deadline = time.perf_counter() + args.duration
    i = 0
    with torch.inference_mode():
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            model.encode(texts[i % len(texts)], show_progress_bar=False)
            calls.append(time.perf_counter() - start)
            i += 1
    single = len(calls) / sum(calls)

    # (b) the library's batched encode over the whole text list, repeated
    done = 0
    elapsed = 0.0
    with torch.inference_mode():
        while elapsed < args.duration:
            start = time.perf_counter()
            model.encode(texts, batch_size=32, show_progress_bar=False)
            elapsed += time.perf_counter() - start
            done += len(texts)
    batched = done / elapsed

    calls_ms = sorted(c * 1e3 for c in calls)
    print(
        json.dumps(
            {
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "single_per_s": single,
                "single_p50_ms": statistics.median(calls_ms),
                "single_p99_ms": calls_ms[min(len(calls_ms) - 1, int(0.99 * len(calls_ms)))],
                "batched_per_s": batched,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
