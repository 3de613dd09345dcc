"""Helpers shared by the tests that run the real command line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "router.cli", "--log-level", "warning"]


def run_cli(*args: str, model_dir: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``intent-router ARGS`` in the repository with the test model; never raises."""
    env = {**os.environ, "INTENT_ROUTER_MODEL_DIR": str(model_dir)}
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env,
        check=False,
    )  # fmt: skip


@contextlib.contextmanager
def serving(*args: str, model_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``intent-router serve ARGS --port 0`` as a real process: (process, port); killed after."""
    env = {**os.environ, "INTENT_ROUTER_MODEL_DIR": str(model_dir)}
    proc = subprocess.Popen(
        [*CLI, "serve", *args, "--port", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("intent-router listening on 127.0.0.1:"), line
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
