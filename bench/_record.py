"""One benchmark run as a dated JSON file under bench/results/ (the history of runs).

Every script in bench/ does, around its measurement::

    parser = argparse.ArgumentParser(...)
    add_record_flag(parser)                # --no-record
    args = parser.parse_args()
    run = Run("latency", args)              # UTC start time, load average before
    ...                                     # measure, print
    run.finish({"grpc_ms": {...}, ...})     # load after; writes the file unless --no-record

The file holds the script and its arguments, the UTC start time and duration, the git
commit (and whether the tree was dirty), the machine (CPU model, cores, memory,
Python / onnxruntime / numpy versions), ``os.getloadavg()`` before and after, and the
figures as structured fields. Standard library only: bench/st_baseline.py's venv has it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
#: Dirty paths listed in a record; more are counted, not listed.
MAX_DIRTY_PATHS = 40


def add_record_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-record",
        action="store_true",
        help=f"print only; do not write a result file under {RESULTS.relative_to(ROOT)}/",
    )


def load_average() -> dict[str, float]:
    one, five, fifteen = (round(x, 2) for x in os.getloadavg())
    return {"1m": one, "5m": five, "15m": fifteen}


def _git(*argv: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *argv], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state() -> dict[str, Any]:
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    dirty = None if status is None else [line[3:] for line in status.splitlines() if line]
    return {
        "commit": commit.strip() if commit else None,
        "dirty": None if dirty is None else bool(dirty),
        "dirty_paths": None if dirty is None else dirty[:MAX_DIRTY_PATHS],
        "dirty_count": None if dirty is None else len(dirty),
    }


def _version(*dists: str) -> str | None:
    for dist in dists:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    return {
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "memory_total_mb": round(int(mem_kb.split()[0]) / 1024) if mem_kb else None,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "onnxruntime": _version("onnxruntime", "onnxruntime-gpu"),
        "numpy": _version("numpy"),
    }


def plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses, paths, numpy scalars and arrays; NaN -> null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # numpy scalar or array
        return plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


class Run:
    """One run of a benchmark script: started at construction, written by ``finish``."""

    def __init__(self, script: str, args: argparse.Namespace) -> None:
        self.script = script
        self.args = args
        self.started = datetime.now(UTC)
        self.load_before = load_average()
        self._t0 = time.perf_counter()

    def finish(self, figures: dict[str, Any]) -> Path | None:
        """Write the record (unless ``--no-record``) and say where; returns the path."""
        load_after = load_average()
        print(
            "load average (1, 5, 15 min) before {1m:.2f} {5m:.2f} {15m:.2f}, ".format(
                **self.load_before
            )
            + "after {1m:.2f} {5m:.2f} {15m:.2f}".format(**load_after),
            flush=True,
        )
        if getattr(self.args, "no_record", False):
            return None
        arguments = {k: v for k, v in vars(self.args).items() if k != "no_record"}
        record = {
            "script": f"bench/{self.script}.py",
            "argv": sys.argv[1:],
            "arguments": arguments,
            "started_utc": self.started.isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - self._t0, 1),
            "git": git_state(),
            "machine": machine(),
            "load_average": {"before": self.load_before, "after": load_after},
            "figures": figures,
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.started:%Y-%m-%dT%H-%M-%S}_{self.script}.json"
        path.write_text(json.dumps(plain(record), indent=2, allow_nan=False) + "\n")
        print(f"results: {path.relative_to(ROOT)}", flush=True)
        return path
