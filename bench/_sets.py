"""What the accuracy benchmarks share: intent sets without thresholds, JSONL rows, and
an eval run's figures in per cent (bench/multilingual.py, bench/calibration.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from router.quality.run import EvalRun
from router.routing.intents import IntentSet


def pct(value: float | None) -> float | None:
    return None if value is None else 100 * value


def strip_thresholds(intents: IntentSet) -> IntentSet:
    """``intents`` without thresholds of their own (nor the model they were tuned for)."""
    return replace(
        intents,
        default_threshold=None,
        threshold_model=None,
        intents=tuple(replace(i, threshold=None) for i in intents.intents),
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def write_jsonl(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )
    return path


def figures(run: EvalRun, rule: str, **extra: Any) -> dict[str, Any]:
    """The headline figures of ``run`` (per cent), labelled with ``rule``."""
    e = run.evaluation()
    m = e.metrics
    return {
        "model": run.model,
        "rule": rule,
        "threshold": e.default_threshold,
        "threshold_source": e.threshold_source,
        "rows": e.rows,
        "in_scope_rows": e.in_scope_rows,
        "in_scope_accuracy": pct(m.in_scope_accuracy),
        "unknown_recall": pct(m.unknown_recall),
        "in_scope_top1": pct(m.in_scope_top1),
        "unknown_precision": pct(m.unknown_precision),
        "accuracy": pct(m.accuracy),
        **extra,
    }
