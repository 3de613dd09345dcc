"""The container image, built and run as production runs it (``deploy/smoke``).

The smoke script builds the image, starts it read-only as UID 65532, waits for SERVING,
classifies, hot-reloads an edited intents volume, stops it with SIGTERM, restarts it on
the same cache volume and stops it again (see its header). These tests run it and check
that it passes, and that it fails, saying why, when the container cannot serve.

When they run (marked ``model``: ``make test`` runs them, ``make test-fast`` never; a cold
build takes minutes, so ``make test`` does not pay for it unasked):

- no Docker daemon answers ``docker info`` -> skipped, saying so (nothing is installed);
- ``INTENT_ROUTER_SMOKE=0`` -> skipped;
- ``INTENT_ROUTER_SMOKE=1`` -> run, making the offline base first if it is missing
  (``deploy/base-image``, about 4 minutes; the image about 3 more);
- otherwise -> run only when the base image is already there (``SMOKE_BASE``, default
  ``local/debian:bookworm``); a cached image build takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ROOT / "deploy" / "smoke"
BASE = os.environ.get("SMOKE_BASE", "local/debian:bookworm")
# one tag per checkout, so that two checkouts testing at once never swap images
IMAGE = "intent-router:test-" + hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
TIMEOUT = 1800  # a cold build of base and image, on a busy machine, with room to spare

# the image bakes the real model in and takes seconds to minutes: not for `make test-fast`
pytestmark = pytest.mark.model


def _docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=10, check=False
    )


def _skip_reason() -> str | None:
    """Why the smoke test cannot or should not run here, or None when it should."""
    asked = os.environ.get("INTENT_ROUTER_SMOKE")
    if asked == "0":
        return "INTENT_ROUTER_SMOKE=0"
    if shutil.which("docker") is None:
        return "no docker client on PATH (apt-get install docker.io; see README, Deploy)"
    try:
        info = _docker("info")
    except subprocess.TimeoutExpired:
        return "docker info did not answer within 10 s"
    if info.returncode != 0:
        return "no Docker daemon answers docker info (start dockerd; see README, Deploy)"
    if asked != "1" and _docker("image", "inspect", BASE).returncode != 0:
        return (
            f"base image {BASE} not made yet: run deploy/base-image (about 4 minutes) "
            "or set INTENT_ROUTER_SMOKE=1 to make it here"
        )
    return None


def _smoke(**env: str) -> subprocess.CompletedProcess[str]:
    env = {"SMOKE_BASE": BASE, "SMOKE_IMAGE": IMAGE, "PYTHON": sys.executable, **env}
    return subprocess.run(
        [str(SMOKE)], capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT, check=False,
        env={**os.environ, **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def smoke_run() -> Iterator[subprocess.CompletedProcess[str]]:
    """One full smoke run (build included) shared by the tests of this module."""
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    yield _smoke()


def test_image_builds_serves_reloads_and_stops_cleanly(
    smoke_run: subprocess.CompletedProcess[str],
) -> None:
    out = smoke_run.stdout + smoke_run.stderr
    assert smoke_run.returncode == 0, out
    assert "classified 'I forgot my password' -> reset_password" in out
    assert "hot reload: revision" in out
    assert "SIGTERM: stopped cleanly (exit 0)" in out
    assert "vectors read from the volume" in out  # /cache was written, and read back
    assert "SIGTERM after the restart: stopped cleanly (exit 0)" in out
    assert "smoke: OK: image" in out


def test_smoke_fails_with_the_reason_when_the_container_cannot_serve(
    smoke_run: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert smoke_run.returncode == 0, "needs the image the full run built"
    (tmp_path / "broken.yaml").write_text("version: 1\nintents:\n  - name: x\n    examples: []\n")
    failed = _smoke(SMOKE_BUILD="0", SMOKE_INTENTS=str(tmp_path))
    assert failed.returncode == 1
    assert "container stopped before SERVING" in failed.stderr
    assert "broken.yaml" in failed.stderr  # the server's own file:line error, from its log
    assert "smoke: OK" not in failed.stdout
