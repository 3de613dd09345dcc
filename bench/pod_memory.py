"""Peak resident memory of one pod's server, as deploy/k8s/intent-router.yaml runs it.

Starts ``intent-router serve`` with the Deployment's flags (``--threads 2``, watching a
copy of the intents, a vector cache, the metrics endpoint) and reads the server's
VmHWM (/proc/PID/status) after each phase:

1. started: model loaded, index built, SERVING;
2. Classify under load: ``--clients`` closed-loop callers for ``--duration`` seconds
   (bench/throughput.py's load generator, in another process);
3. the worst accepted calls: ClassifyBatch of 10 texts of ``--max-text-chars``
   characters (by default 20,000, which makes the ``--max-request-chars`` default,
   200,000), CJK text (one token a character for MiniLM) and English, each routed whole
   and as tickets (``multi_intent``: about 950 passages a Chinese text, 300 an English
   one), each
   ``--bulk-repeats`` times, while the Classify load goes on;
4. a hot reload: an intent added to the watched copy, the old and new index both alive
   until the swap.

The Deployment's memory request and limit come from the largest peak over both
catalogue models (run once per ``--model``); the figures and the load are printed and
recorded (bench/_record.py).

    python bench/pod_memory.py [--model minilm|use-multilingual|DIR] [--intents DIR]
                               [--clients 32] [--duration 10] [--bulk-repeats 3]
                               [--max-text-chars 20000]
                               [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from _load import proc_status_mb, stop_process
from _model import add_model_flag
from _record import Run, add_record_flag
from throughput import ROOT, drive, load_texts

#: What deploy/k8s/intent-router.yaml passes besides the paths and ports.
DEPLOYMENT_FLAGS = ("--threads", "2", "--grace", "15")
#: The worst accepted call: WORST_TEXTS texts of --max-text-chars characters (with the
#: defaults, 10 x 20,000: --max-request-chars, 200,000).
WORST_TEXTS = 10
CJK_SEED = "我的订单还没有到，能帮我查一下物流信息吗？"  # noqa: RUF001 (CJK punctuation meant)
ENGLISH_SEED = "my parcel has not arrived yet, could you check where it is please? "


def start(
    model: str, intents: Path, cache: Path, max_text_chars: int
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "--log-level", "warning", "serve",
         "--intents", str(intents), "--model", model, "--port", "0", "--metrics-port", "0",
         "--cache-dir", str(cache), "--queue-size", "1024",
         "--max-text-chars", str(max_text_chars), *DEPLOYMENT_FLAGS],
        stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def worst_batches(port: int, repeats: int, chars: int) -> dict[str, int]:
    """ClassifyBatch at the text limit, CJK and English; the status of each call."""
    return asyncio.run(_worst_batches(port, repeats, chars))


async def _worst_batches(port: int, repeats: int, chars: int) -> dict[str, int]:
    import grpc

    from router.api.v1 import router_pb2 as pb
    from router.api.v1 import router_pb2_grpc as pb_grpc

    codes: dict[str, int] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.IntentRouterStub(channel)
        for seed in (CJK_SEED, ENGLISH_SEED) * repeats:
            text = (seed * (chars // len(seed) + 1))[:chars]
            for tickets in (False, True):  # each text whole, then cut into passages
                try:
                    await stub.ClassifyBatch(
                        pb.ClassifyBatchRequest(texts=[text] * WORST_TEXTS, multi_intent=tickets),
                        timeout=300,
                    )
                    code = "OK"
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                key = f"{'tickets' if tickets else 'texts'} {code}"
                codes[key] = codes.get(key, 0) + 1
    return codes


def reload_once(port: int, intents: Path) -> str:
    """Add an intent to the watched copy; wait for the revision to change."""
    return asyncio.run(_reload_once(port, intents))


async def _reload_once(port: int, intents: Path) -> str:
    import grpc

    from router.api.v1 import router_pb2 as pb
    from router.api.v1 import router_pb2_grpc as pb_grpc

    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.IntentRouterStub(channel)
        before = (await stub.Info(pb.InfoRequest())).revision
        extra = intents / "zz_pod_memory.yaml"
        extra.write_text(
            "version: 1\nintents:\n  - name: pod_memory_marker\n"
            "    examples: [purple elephant dancing, the purple elephant song]\n",
            encoding="utf-8",
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            now = (await stub.Info(pb.InfoRequest())).revision
            if now != before:
                return now
            await asyncio.sleep(0.05)
    raise RuntimeError("the edit was not reloaded within 120 s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_flag(parser)
    parser.add_argument("--intents", type=Path, default=None, help="default: the model's set")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of Classify load")
    parser.add_argument("--bulk-repeats", type=int, default=3)
    parser.add_argument(
        "--max-text-chars",
        type=int,
        default=20_000,
        help="the server's flag; the worst texts' length",
    )
    add_record_flag(parser)
    args = parser.parse_args()
    run = Run("pod_memory", args)
    source = (
        args.intents or ROOT / ("intents/zh" if args.model == "use-multilingual" else "intents")
    ).resolve()
    texts = load_texts(source)
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(2) as pool:
        intents = Path(tmp) / "intents"
        intents.mkdir()
        for file in source.glob("*.y*ml"):
            shutil.copy(file, intents / file.name)
        proc, port = start(args.model, intents, Path(tmp) / "vectors", args.max_text_chars)
        try:
            phases["started (VmRSS)"] = proc_status_mb(proc.pid, "VmRSS")
            phases["started"] = proc_status_mb(proc.pid, "VmHWM")
            load = pool.submit(drive, port, proc.pid, args.clients, 1.0, args.duration, texts)
            load.result()
            phases[f"Classify, {args.clients} clients"] = proc_status_mb(proc.pid, "VmHWM")
            load = pool.submit(drive, port, proc.pid, args.clients, 1.0, args.duration, texts)
            bulk = pool.submit(worst_batches, port, args.bulk_repeats, args.max_text_chars)
            bulk = bulk.result()
            served = load.result()
            phases["+ worst ClassifyBatch"] = proc_status_mb(proc.pid, "VmHWM")
            reload_once(port, intents)
            phases["+ hot reload"] = proc_status_mb(proc.pid, "VmHWM")
            phases["end (VmRSS)"] = proc_status_mb(proc.pid, "VmRSS")
        finally:
            stop_process(proc, timeout=60)
    flags = " ".join([*DEPLOYMENT_FLAGS, "--max-text-chars", str(args.max_text_chars)])
    print(f"model {args.model}, intents {source.relative_to(ROOT)}, flags {flags}")
    for phase, mb in phases.items():
        print(f"  {phase:<32}{mb:8.1f} MB")
    print(f"  worst ClassifyBatch calls: {bulk}; Classify errors meanwhile: {served['errors']}")
    figures: dict[str, Any] = {
        "model": args.model,
        "peak_rss_mb": max(v for k, v in phases.items() if "VmRSS" not in k),
        "phases_mb": phases,
        "worst_batch_codes": bulk,
        "classify_errors": served["errors"],
    }
    print(f"  peak RSS {figures['peak_rss_mb']:.1f} MB")
    run.finish(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
