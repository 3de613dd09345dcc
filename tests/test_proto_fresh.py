"""The committed generated code is what proto/ generates today."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        [str(ROOT / "scripts" / "gen-proto"), str(tmp_path)], check=True, cwd=ROOT, env=env
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "protoc generated nothing"
    for rel in generated:
        committed = ROOT / rel
        assert committed.is_file(), f"{rel} is generated but not committed"
        assert committed.read_text() == (tmp_path / rel).read_text(), (
            f"{rel} is stale: run scripts/gen-proto"
        )
