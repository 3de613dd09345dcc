"""Which scoring finds "unknown" best? CLINC150 and the bundled shop intents.

    python bench/clinc_scoring.py --data ../shared/data/clinc150 [--model DIR] [--cache DIR]
                                  [--no-record]

Embeds every split once with ``TokenGraphEncoder.embed`` (every hidden-state block the graph gives,
as the engine does; cached as .npy under --cache, default a directory in the system temp
dir; no negation preprocessing), then scores val and test through
``router.routing.index.Index``, built from the intents and exemplar vectors with the
``IndexSettings`` scoring in question: the product's one scoring implementation. Per
dataset and candidate it prints test figures at a threshold tuned on val only, with two
tuning rules, and writes them to bench/results/ (bench/_record.py):

* ``max-acc``: the threshold maximising overall val accuracy (unknown as a label);
* ``keep-98``: the threshold answering 98% of the val in-scope rows (a quantile of the
  in-scope val scores; does not look at the val unknown rows at all).

A candidate's answer is what ``Index.decide`` answers: the intent ranked first
(``Scored.rank``) and its score (``Scored.scores``). Rows marked ``diag`` are not
scorings the product offers: they read one term of the head index (its softmax, logits,
or the cosines ``Index.scores`` returns) to show what each contributes.

Columns: in-scope accuracy (unknown counts as wrong), unknown recall, unknown precision,
overall accuracy, the val-tuned threshold. ``orc95`` is a diagnostic only, never a
setting: the best unknown recall any threshold reaches on *test* while keeping test
in-scope accuracy >= 95.0 ("-" if none does). It says whether a scoring can hit the
target at all. Exemplars are the in-scope train rows (shop: the YAML examples); the
``+ reject class`` row alone also trains on CLINC's 100 unknown train rows (the
``out_of_scope:`` examples of an intents file).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _record import Run, add_record_flag  # bench/ is on sys.path when run as a script

from router.model.contract import MANIFEST_FILE
from router.routing.index import Index, IndexSettings, Scoring
from router.routing.intents import UNKNOWN, Intent, IntentSet, load_intents

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- data and embedding


@dataclass
class Split:
    x: F32  # (n, layers x dim) pooled hidden states (TokenGraphEncoder.embed)
    y: I64  # intent id, -1 for unknown


@dataclass
class Dataset:
    name: str
    intents: IntentSet  # exemplars: the in-scope train rows, in intent order
    names: list[str]
    layers: int
    train: Split  # rows of ``intents``' examples, in order
    unknown: F32  # the train rows labelled unknown (CLINC's 100), maybe none
    val: Split
    test: Split


def read_jsonl(path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["text"], r["intent"]) for r in rows]


class Embedder:
    """``TokenGraphEncoder.embed`` rows, cached in ``cache/key.<sha of manifest + texts>.npy``."""

    def __init__(self, model: Path, cache: Path) -> None:
        self.model, self.cache = model, cache
        manifest = model / MANIFEST_FILE
        self.model_tag = manifest.read_bytes() if manifest.exists() else str(model).encode()
        self._encoder: Any = None
        self.layers = 0

    def __call__(self, key: str, texts: list[str]) -> F32:
        digest = hashlib.sha256(self.model_tag + b"\0" + "\n".join(texts).encode())
        path = self.cache / f"{key}.embed.{digest.hexdigest()[:12]}.npz"
        if path.exists():
            with np.load(path) as saved:
                self.layers = int(saved["layers"])
                vecs: F32 = saved["x"]
                return vecs
        if self._encoder is None:
            from router.model.token_graph import TokenGraphEncoder  # only needed on a cache miss

            self._encoder = TokenGraphEncoder(self.model, threads=2)
        t0 = time.perf_counter()
        vecs = self._encoder.embed(texts)
        self.layers = self._encoder.layers
        print(
            f"  embedded {key}: {len(texts)} texts in {time.perf_counter() - t0:.1f}s", flush=True
        )
        self.cache.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=vecs, layers=self.layers)
        return vecs


def make_dataset(
    name: str, intents: IntentSet, unknown: list[str], val: list[tuple[str, str]],
    test: list[tuple[str, str]], embed: Embedder,
) -> Dataset:  # fmt: skip
    names = [i.name for i in intents.intents]
    ids = {n: k for k, n in enumerate(names)}

    def split(key: str, rows: list[tuple[str, str]]) -> Split:
        x = embed(f"{name}_{key}", [t for t, _ in rows])
        return Split(x, np.array([ids.get(i, -1) for _, i in rows], dtype=np.int64))

    train = split("train", [(e, i.name) for i in intents.intents for e in i.examples])
    width = train.x.shape[1]
    oos = embed(f"{name}_unknown", unknown) if unknown else np.zeros((0, width), np.float32)
    return Dataset(
        name, intents, names, embed.layers, train, oos, split("val", val), split("test", test)
    )


def load_clinc(data: Path, embed: Embedder) -> Dataset:
    rows = {s: read_jsonl(data / f"{s}.jsonl") for s in ("train", "val", "test")}
    by_intent: dict[str, list[str]] = {}
    for text, intent in rows["train"]:
        if intent != UNKNOWN:
            by_intent.setdefault(intent, []).append(text)
    intents = IntentSet(
        intents=tuple(Intent(name=k, examples=tuple(v)) for k, v in sorted(by_intent.items())),
        default_threshold=None,
        files=(),
        revision="clinc150-train",
    )
    unknown = [t for t, i in rows["train"] if i == UNKNOWN]
    return make_dataset("clinc", intents, unknown, rows["val"], rows["test"], embed)


def load_shop(directory: Path, embed: Embedder) -> Dataset:
    intents = load_intents(directory)
    val = read_jsonl(directory / "eval" / "val.jsonl")
    test = read_jsonl(directory / "eval" / "test.jsonl")
    return make_dataset("shop", intents, [], val, test, embed)


# ---------------------------------------------------------------- figures and thresholds


def figures(pred: I64, score: F32, y: I64, threshold: float) -> tuple[float, ...]:
    """in-scope acc, unknown recall, unknown precision, overall acc (percent)."""
    p = np.where(score >= threshold, pred, -1)
    ins, unk = y >= 0, y < 0
    said_unknown = p == -1
    recall = said_unknown[unk].mean() if unk.any() else np.nan
    precision = (said_unknown & unk).sum() / said_unknown.sum() if said_unknown.any() else np.nan
    return tuple(
        100 * float(v) for v in ((p[ins] == y[ins]).mean(), recall, precision, (p == y).mean())
    )


def threshold_max_acc(pred: I64, score: F32, y: I64) -> float:
    """Midpoint threshold maximising overall accuracy (first maximum from below)."""
    order = np.argsort(score, kind="stable")
    s, right, unk = score[order], (pred == y)[order], (y < 0)[order]
    # cut at i: rows [0, i) answered unknown, rows [i, n) answered
    correct = np.concatenate([[0], np.cumsum(unk)]) + np.concatenate(
        [np.cumsum(right[::-1])[::-1], [0]]
    )
    i = int(np.argmax(correct))
    if i == 0:
        return float(s[0]) - 1e-6
    if i == len(s):
        return float(s[-1]) + 1e-6
    return float(s[i - 1] + s[i]) / 2


def threshold_keep(score: F32, y: I64, keep: float = 0.98) -> float:
    return float(np.quantile(score[y >= 0], 1 - keep))


def oracle_recall(pred: I64, score: F32, y: I64, target: float = 95.0) -> float | None:
    best = None
    for t in np.unique(score):
        acc, recall, _, _ = figures(pred, score, y, float(t))
        if acc >= target and (best is None or recall > best):
            best = recall
    return best


# ---------------------------------------------------------------- candidates

Scorer = Callable[[F32], tuple[I64, F32]]  # vectors -> (intent id, score; higher = in-scope)


def index_scorer(index: Index) -> Scorer:
    """What ``Index.decide`` answers: the first-ranked intent and its score."""

    def score(x: F32) -> tuple[I64, F32]:
        scored = index.scores(x)
        label = scored.rank.argmax(1)
        return label, scored.scores[np.arange(len(x)), label]

    return score


def head_terms(head_index: Index, topk: Index) -> dict[str, Scorer]:
    """Diagnostics: one term of the head index at a time, at the head's choice."""
    head = head_index.head
    assert head is not None

    def logits(x: F32) -> F32:
        z: F32 = head.logits(head_index.features(x))
        return z

    def max_prob(x: F32) -> tuple[I64, F32]:
        p = head.probabilities(head_index.features(x))
        return p.argmax(1), p.max(1)

    def margin(x: F32) -> tuple[I64, F32]:
        p = head.probabilities(head_index.features(x))
        top2 = np.sort(p, axis=1)[:, -2:]
        return p.argmax(1), top2[:, 1] - top2[:, 0]

    def energy(x: F32) -> tuple[I64, F32]:
        z = logits(x)
        top = z.max(1)
        return z.argmax(1), top + np.log(np.exp(z - top[:, None]).sum(1))

    def max_logit(x: F32) -> tuple[I64, F32]:
        z = logits(x)
        return z.argmax(1), z.max(1) / np.float32(head.scale)

    def local(x: F32) -> tuple[I64, F32]:
        label = logits(x).argmax(1)
        return label, topk.scores(x).scores[np.arange(len(x)), label]

    def any_k(x: F32) -> tuple[I64, F32]:
        sims = head_index.scores(x).sims
        k = min(head.any_k, sims.shape[1])
        return logits(x).argmax(1), np.sort(sims, axis=1)[:, -k:].mean(1)

    return {
        "diag head max-prob": max_prob,
        "diag head margin": margin,
        "diag head energy": energy,
        "diag head max-logit/s": max_logit,
        f"diag head + local top-{topk.settings.k}": local,
        f"diag head + any top-{head.any_k}": any_k,
    }


def candidates(ds: Dataset) -> tuple[dict[str, Scorer], dict[str, float]]:
    """Every candidate's scorer, and each index's build time (s)."""
    built: dict[str, Index] = {}
    seconds: dict[str, float] = {}

    def build(name: str, settings: IndexSettings, negatives: F32 | None = None) -> Index:
        t0 = time.perf_counter()
        built[name] = Index(ds.intents, ds.train.x, settings, negatives, layers=ds.layers)
        seconds[name] = time.perf_counter() - t0
        return built[name]

    build("nearest", IndexSettings(scoring=Scoring.NEAREST))
    topk = build("top-3 mean", IndexSettings(scoring=Scoring.TOPK_MEAN, k=3))
    build("top-5 mean", IndexSettings(scoring=Scoring.TOPK_MEAN, k=5))
    build("centroid", IndexSettings(scoring=Scoring.CENTROID))
    head = build("head (default)", IndexSettings(scoring=Scoring.HEAD))
    if len(ds.unknown):
        build("head + reject class", IndexSettings(scoring=Scoring.HEAD), ds.unknown)
    scorers = {name: index_scorer(index) for name, index in built.items()}
    return scorers | head_terms(head, topk), seconds


# ---------------------------------------------------------------- the table


def run(ds: Dataset) -> dict[str, Any]:
    scorers, seconds = candidates(ds)
    n_ex = ds.intents.example_count
    print(
        f"\n## {ds.name}: {len(ds.names)} intents, {n_ex} exemplars, {ds.layers} blocks per row, "
        f"head index built in {seconds['head (default)']:.2f}s"
    )
    print(
        f"val {len(ds.val.y)} rows ({int((ds.val.y < 0).sum())} unknown), "
        f"test {len(ds.test.y)} rows ({int((ds.test.y < 0).sum())} unknown)"
    )
    cols = "in-acc unkR  unkP  all   thr"
    print(f"{'candidate':28s} {'closed':>6s} | max-acc: {cols} | keep-98: {cols} | orc95")
    rows = []
    keys = ("in_scope_accuracy", "unknown_recall", "unknown_precision", "accuracy", "threshold")
    for name, scorer in scorers.items():
        pv, sv = scorer(ds.val.x)
        pt, st = scorer(ds.test.x)
        ins = ds.test.y >= 0
        closed = 100 * float((pt[ins] == ds.test.y[ins]).mean())
        line = f"{name:28s} {closed:6.1f}"
        row: dict[str, Any] = {"candidate": name, "closed_set_top1": closed}
        for rule, thr in (
            ("max_acc", threshold_max_acc(pv, sv, ds.val.y)),
            ("keep_98", threshold_keep(sv, ds.val.y)),
        ):
            f = figures(pt, st, ds.test.y, thr)
            line += " | " + " ".join(f"{v:5.1f}" for v in f) + f" {thr:6.3f}"
            row[rule] = dict(zip(keys, (*f, thr), strict=True))
        orc = oracle_recall(pt, st, ds.test.y)
        row["oracle_recall_at_95"] = orc
        rows.append(row)
        print(line + (f" | {orc:5.1f}" if orc is not None else " |     -"), flush=True)
    return {
        "intents": len(ds.names),
        "exemplars": n_ex,
        "layers": ds.layers,
        "val_rows": len(ds.val.y),
        "test_rows": len(ds.test.y),
        "index_build_s": seconds,
        "candidates": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="CLINC150 directory (jsonl splits)")
    ap.add_argument("--intents", type=Path, default=ROOT / "intents", help="shop intents dir")
    ap.add_argument("--model", type=Path, default=None, help="model dir (default: model store)")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-bench-vecs"
    )
    add_record_flag(ap)
    args = ap.parse_args()
    record = Run("clinc_scoring", args)
    model = args.model
    if model is None:
        from router.model.contract import default_model_dir

        model = default_model_dir()
    embed = Embedder(model, args.cache)
    results = {
        "clinc": run(load_clinc(args.data, embed)),
        "shop": run(load_shop(args.intents, embed)),
    }
    record.finish({"unit": "percent of the test rows (threshold: score)", "datasets": results})


if __name__ == "__main__":
    main()
