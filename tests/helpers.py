"""Helpers shared by the tests that run the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
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
