"""Start-up and hot-reload times at 2,000 and 10,000 exemplars, real model, in process.

For each size, builds an intents directory (CLINC150 train rows: 100 per intent), then
measures, with real servers on 127.0.0.1:
  1. cold start: model load + embedding every exemplar, until health says SERVING
     (an empty vector cache);
  2. restart with the on-disk vector cache (nothing to embed);
  3. save-to-answer: the time from writing a one-example change to the first Classify
     answered by the new revision (file watcher, debounce, validation, re-embedding one
     example, index build and swap), on an idle server, for each reload path:
       warm:  the head warm-started from the serving revision (the default), then the
              final head trained off the answer path; "final" is the time until it serves;
       cold:  every reload builds as a cold start does (the path before warm starts:
              ``Engine(warm_reloads=False)``), the baseline measured in the same run.

Prints the figures, the ratio cold / warm and the goals (10,000: < 1 s; 2,000: < 250 ms),
and writes them to bench/results/ (bench/_record.py, with the load average).

    python bench/reload.py [--data ../shared/data/clinc150] [--exemplars 2000 10000]
                           [--edits 10] [--cache DIR] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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


#: Goals for a one-example edit, by exemplars (issue #16).
GOAL_MS = {2000: 250.0, 10000: 1000.0}


async def idle(server: RouterServer) -> None:
    """Until no reload, final build or lint runs (the next edit finds an idle server)."""
    assert server.reloader is not None
    while server.reloader.in_progress or server.reloader.linting:
        await asyncio.sleep(0.01)


class Marks:
    """When the watcher asked for the reload and when the first build of it returned."""

    def __init__(self, server: RouterServer) -> None:
        assert server.reloader is not None
        self.asked = self.built = 0.0
        reloader, engine = server.reloader, server.engine
        request, build = reloader._request, engine.build

        def asked(trigger: str) -> asyncio.Task[object]:
            self.asked = self.asked or time.perf_counter()
            return request(trigger)  # type: ignore[return-value]

        def built(*args: object, **kwargs: object) -> object:
            out = build(*args, **kwargs)  # type: ignore[arg-type]
            self.built = self.built or time.perf_counter()
            return out

        reloader._request = asked  # type: ignore[method-assign,assignment]
        engine.build = built  # type: ignore[method-assign,assignment]

    def reset(self) -> None:
        self.asked = self.built = 0.0


async def save_to_answer(
    server: RouterServer, directory: Path, edits: int, tag: str
) -> tuple[list[float], list[float], list[tuple[float, float]]]:
    """Save-to-answer times, save-to-final times (the final head serving), and for each
    edit (write -> the watcher's trigger, write -> the build done)."""
    path = directory / "clinc.yaml"
    answered, final, parts = [], [], []
    marks = Marks(server)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.IntentRouterStub(channel)
        before = (await stub.Info(pb.InfoRequest())).revision
        for i in range(edits):
            doc = yaml.safe_load(path.read_text())
            doc["intents"][0]["examples"][0] = f"zebra crossing {tag} number {i} please"
            text = yaml.safe_dump(doc, allow_unicode=True)
            await idle(server)
            await asyncio.sleep(0.3)  # let the previous change settle
            marks.reset()
            t0 = time.perf_counter()
            path.write_text(text)
            while True:
                reply = await stub.Classify(pb.ClassifyRequest(text="zebra crossing"))
                if reply.revision != before:
                    break
                await asyncio.sleep(0.002)  # poll every ~2 ms without starving the reload
            answered.append(time.perf_counter() - t0)
            parts.append((marks.asked - t0, marks.built - t0))
            while not server.engine.snapshot.final:
                await asyncio.sleep(0.002)
            final.append(time.perf_counter() - t0)
            before = reply.revision
    return answered, final, parts


def ms(values: list[float]) -> dict[str, float | list[float]]:
    return {
        "median": statistics.median(values) * 1e3,
        "worst": max(values) * 1e3,
        "samples": [round(x * 1e3, 1) for x in values],
    }


async def one_size(args: argparse.Namespace, exemplars: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "intents"
        cache = (args.cache or Path(tmp)) / f"cache-{exemplars}"
        directory.mkdir()
        write_intents(args.data, exemplars, directory)
        count = load_intents(directory).example_count

        cold = None
        if args.cache is None:  # empty: the cold start embeds every exemplar
            server, cold = await start(directory, cache)
            await server.stop(grace=0)
        server, warm = await start(directory, cache)
        edits: dict[str, tuple[list[float], list[float], list[tuple[float, float]]]] = {}
        try:
            for path in ("warm", "cold"):
                server.engine.warm_reloads = path == "warm"
                edits[path] = await save_to_answer(server, directory, args.edits, path)
        finally:
            await server.stop(grace=0)
    goal = GOAL_MS.get(count)
    w, c = statistics.median(edits["warm"][0]), statistics.median(edits["cold"][0])
    print(f"\n{count} exemplars; debounce {DEBOUNCE_MS} ms; {args.edits} edits per path")
    if cold is not None:
        print(f"{'cold start, empty vector cache (model + embed all)':<56}{cold * 1e3:>9.0f} ms")
    print(f"{'cold start, warm vector cache (nothing to embed)':<56}{warm * 1e3:>9.0f} ms")
    print(f"{'one-example edit -> answered, warm start (median)':<56}{w * 1e3:>9.0f} ms")
    print(f"{'  worst':<56}{max(edits['warm'][0]) * 1e3:>9.0f} ms", end="")
    print(f"   (goal < {goal:.0f} ms)" if goal else "")
    fin = statistics.median(edits["warm"][1])
    print(f"{'  -> the final head serving (median)':<56}{fin * 1e3:>9.0f} ms")
    asked = statistics.median(a for a, _ in edits["warm"][2])
    built = statistics.median(b for _, b in edits["warm"][2])
    print(f"{'  of which write -> the watcher asks (median)':<56}{asked * 1e3:>9.0f} ms")
    print(f"{'  of which write -> load + warm build done (median)':<56}{built * 1e3:>9.0f} ms")
    print(f"{'one-example edit -> answered, cold build (baseline)':<56}{c * 1e3:>9.0f} ms")
    print(f"{'  ratio cold / warm':<56}{c / w:>9.1f} x")
    return {
        "exemplars": count,
        "debounce_ms": DEBOUNCE_MS,
        "cold_start_empty_cache_ms": None if cold is None else cold * 1e3,
        "cold_start_warm_cache_ms": warm * 1e3,
        "goal_ms": goal,
        "edit_to_answer_warm_ms": ms(edits["warm"][0]),
        "edit_to_final_warm_ms": ms(edits["warm"][1]),
        "edit_to_answer_cold_ms": ms(edits["cold"][0]),
        "write_to_trigger_warm_ms": ms([a for a, _ in edits["warm"][2]]),
        "write_to_built_warm_ms": ms([b for _, b in edits["warm"][2]]),
        "write_to_built_cold_ms": ms([b for _, b in edits["cold"][2]]),
        "cold_over_warm": c / w,
    }


async def main_async(args: argparse.Namespace, run: Run) -> None:
    logging.getLogger("router.serving.reload").setLevel(logging.ERROR)  # lint findings
    sizes = [await one_size(args, n) for n in args.exemplars]
    run.finish({"sizes": sizes})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/clinc150")
    parser.add_argument("--exemplars", type=int, nargs="+", default=[2000, 10000])
    parser.add_argument("--edits", type=int, default=10)
    parser.add_argument(
        "--cache",
        type=Path,
        help="keep the vector caches here between runs (no empty-cache start then)",
    )
    add_record_flag(parser)
    args = parser.parse_args()
    asyncio.run(main_async(args, Run("reload", args)))


if __name__ == "__main__":
    main()
