"""Start-up and hot-reload times for 2,000 exemplars, one run.

Builds an intents directory of N exemplars (CLINC150 train rows: 20 intents x 100),
then measures, with real servers on 127.0.0.1:
  1. cold start: model load + embedding every exemplar, until health says SERVING;
  2. restart with the on-disk vector cache (nothing to embed);
  3. save-to-answer: the time from saving a one-example change to the first Classify
     answer that follows it (file watcher, debounce, validation, re-embedding one
     example, index build and swap), median of several edits.

Prints the figures and writes them to bench/results/ (bench/_record.py).

    python bench/reload.py [--data ../shared/data/clinc150] [--exemplars 2000] [--edits 10]
                           [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import grpc
import yaml
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.model.contract import default_model_dir
from router.routing.intents import load_intents
from router.serving.reload import DEBOUNCE_MS
from router.serving.server import RouterServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent


def write_intents(data: Path, n: int, directory: Path) -> None:
    by_intent: dict[str, list[str]] = {}
    for line in (data / "train.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["intent"] != "unknown":
            by_intent.setdefault(row["intent"], []).append(row["text"])
    per = 100
    names = sorted(by_intent)[: n // per]
    doc = {"version": 1, "intents": [{"name": k, "examples": by_intent[k][:per]} for k in names]}
    (directory / "clinc.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))


async def start(directory: Path, cache: Path) -> tuple[RouterServer, float]:
    t0 = time.perf_counter()
    server = RouterServer(
        ServerConfig(
            intents=load_intents(directory), intents_path=directory,
            model_dir=default_model_dir(), port=0, cache_dir=cache,
        )
    )  # fmt: skip
    await server.start()
    return server, time.perf_counter() - t0


async def save_to_answer(
    server: RouterServer, directory: Path, edits: int
) -> tuple[list[float], list[float]]:
    """Save-to-answer times, and the server's own reload times (load, build, swap, then the
    vector-cache write, which answers do not wait for)."""
    path = directory / "clinc.yaml"
    samples = []
    inside = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.IntentRouterStub(channel)
        before = (await stub.Info(pb.InfoRequest())).revision
        for i in range(edits):
            doc = yaml.safe_load(path.read_text())
            doc["intents"][0]["examples"][0] = f"zebra crossing number {i} please"
            text = yaml.safe_dump(doc, allow_unicode=True)
            await asyncio.sleep(0.3)  # let the previous change settle
            t0 = time.perf_counter()
            path.write_text(text)
            while True:
                reply = await stub.Classify(pb.ClassifyRequest(text="zebra crossing"))
                if reply.revision != before:
                    break
                await asyncio.sleep(0.002)  # poll every ~2 ms without starving the reload
            samples.append(time.perf_counter() - t0)
            assert server.reloader is not None
            inside.append(server.reloader.status.seconds)
            before = reply.revision
    return samples, inside


async def main_async(args: argparse.Namespace, run: Run) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory, cache = Path(tmp) / "intents", Path(tmp) / "cache"
        directory.mkdir()
        write_intents(args.data, args.exemplars, directory)
        count = load_intents(directory).example_count

        server, cold = await start(directory, cache)
        await server.stop(grace=0)
        server, warm = await start(directory, cache)
        try:
            samples, inside = await save_to_answer(server, directory, args.edits)
        finally:
            await server.stop(grace=0)
    print(f"{count} exemplars; debounce {DEBOUNCE_MS} ms")
    print(f"{'cold start (model + embed all), until SERVING':<52}{cold * 1e3:>9.0f} ms")
    print(f"{'restart with the on-disk vector cache':<52}{warm * 1e3:>9.0f} ms")
    print(f"{'  ratio cold / cached':<52}{cold / warm:>9.1f} x")
    med, worst = statistics.median(samples), max(samples)
    print(f"{'save one-example change -> answers follow (median)':<52}{med * 1e3:>9.0f} ms")
    print(f"{'  worst of ' + str(len(samples)):<52}{worst * 1e3:>9.0f} ms   (goal < 250 ms)")
    inner = statistics.median(inside)
    print(f"{'  the reload as the server times it (+ cache write)':<52}{inner * 1e3:>9.0f} ms")
    run.finish(
        {
            "exemplars": count,
            "debounce_ms": DEBOUNCE_MS,
            "cold_start_ms": cold * 1e3,
            "cached_restart_ms": warm * 1e3,
            "cold_over_cached": cold / warm,
            "save_to_answer_ms": {
                "median": med * 1e3,
                "worst": worst * 1e3,
                "samples": [x * 1e3 for x in samples],
            },
            "server_reload_ms": {"median": inner * 1e3, "samples": [x * 1e3 for x in inside]},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/clinc150")
    parser.add_argument("--exemplars", type=int, default=2000)
    parser.add_argument("--edits", type=int, default=10)
    add_record_flag(parser)
    args = parser.parse_args()
    asyncio.run(main_async(args, Run("reload", args)))


if __name__ == "__main__":
    main()
