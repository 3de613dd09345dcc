"""Which scoring finds "unknown" best? CLINC150 and the bundled shop intents.

    python bench/clinc_scoring.py --data ../shared/data/clinc150 [--model DIR] [--cache DIR]

Embeds every split once (cached as .npy under --cache, default a directory in the system
temp dir) and prints, per dataset and candidate, test figures at a threshold tuned on
val only, with two tuning rules:

* ``max-acc``: the threshold maximising overall val accuracy (unknown as a label);
* ``keep-98``: the threshold answering 98% of the val in-scope rows (a quantile of the
  in-scope val scores; does not look at the val unknown rows at all).

Columns: in-scope accuracy (unknown counts as wrong), unknown recall, unknown precision,
overall accuracy, the val-tuned threshold. ``orc95`` is a diagnostic only, never a
setting: the best unknown recall any threshold reaches on *test* while keeping test
in-scope accuracy >= 95.0 ("-" if none does). It says whether a scoring can hit the
target at all. Exemplars are the in-scope train rows (shop: the YAML examples); the
``+oos class`` row alone also trains on CLINC's 100 unknown train rows.
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

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from router.routing.head import Head, train_head
from router.routing.intents import UNKNOWN, load_intents

F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- data and embedding


@dataclass
class Split:
    x: F32  # (n, 384) unit vectors
    y: I64  # intent id, -1 for unknown


@dataclass
class Dataset:
    name: str
    names: list[str]
    train: Split  # exemplars (+ unknown rows with y = -1 if the data has them)
    val: Split
    test: Split


def read_jsonl(path: Path) -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(r["text"], r["intent"]) for r in rows]


def embed(cache: Path, key: str, texts: list[str], model: Path) -> F32:
    """Vectors for ``texts``, cached in ``cache/key.<sha of texts>.npy``."""
    tag = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = cache / f"{key}.{tag}.npy"
    if path.exists():
        return np.load(path)
    from router.model.encoder import Encoder  # only needed on a cache miss

    t0 = time.perf_counter()
    vecs = Encoder(model, threads=2).encode(texts)
    print(f"  embedded {key}: {len(texts)} texts in {time.perf_counter() - t0:.1f}s", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def make_dataset(
    name: str, train: list[tuple[str, str]], val: list[tuple[str, str]],
    test: list[tuple[str, str]], cache: Path, model: Path,
) -> Dataset:  # fmt: skip
    names = sorted({i for _, i in train if i != UNKNOWN})
    ids = {n: k for k, n in enumerate(names)}

    def split(key: str, rows: list[tuple[str, str]]) -> Split:
        x = embed(cache, f"{name}_{key}", [t for t, _ in rows], model)
        return Split(x, np.array([ids.get(i, -1) for _, i in rows], dtype=np.int64))

    return Dataset(name, names, split("train", train), split("val", val), split("test", test))


def load_clinc(data: Path, cache: Path, model: Path) -> Dataset:
    rows = {s: read_jsonl(data / f"{s}.jsonl") for s in ("train", "val", "test")}
    return make_dataset("clinc", rows["train"], rows["val"], rows["test"], cache, model)


def load_shop(intents: Path, cache: Path, model: Path) -> Dataset:
    train = [(e, i.name) for i in load_intents(intents).intents for e in i.examples]
    val = read_jsonl(intents / "eval" / "val.jsonl")
    test = read_jsonl(intents / "eval" / "test.jsonl")
    return make_dataset("shop", train, val, test, cache, model)


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


def exemplar_scorers(train: Split, n_classes: int) -> dict[str, Scorer]:
    ex, ey = train.x[train.y >= 0], train.y[train.y >= 0]
    cent = np.stack([ex[ey == c].mean(0) for c in range(n_classes)])
    cent /= np.linalg.norm(cent, axis=1, keepdims=True)

    def top_k(k: int) -> Scorer:
        def score(x: F32) -> tuple[I64, F32]:
            cos = x @ ex.T
            per = np.full((len(x), n_classes), -2.0, dtype=np.float32)
            for c in range(n_classes):
                sc = cos[:, ey == c]
                kk = min(k, sc.shape[1])
                per[:, c] = np.partition(sc, sc.shape[1] - kk, axis=1)[:, -kk:].mean(1)
            return per.argmax(1), per.max(1)

        return score

    def centroid(x: F32) -> tuple[I64, F32]:
        cos = x @ cent.T
        return cos.argmax(1), cos.max(1)

    return {
        "nearest": top_k(1),
        "top-3 mean": top_k(3),
        "top-5 mean": top_k(5),
        "centroid": centroid,
    }


def head_scorers(head: Head, train: Split) -> dict[str, Scorer]:
    ex, ey = train.x[train.y >= 0], train.y[train.y >= 0]
    means = np.stack([ex[ey == c].mean(0) for c in range(head.n_classes)])

    def field(name: str) -> Scorer:
        def score(x: F32) -> tuple[I64, F32]:
            s = head.scores(x)
            return s.label, getattr(s, name)

        return score

    def energy(x: F32) -> tuple[I64, F32]:
        z = head.logits(x)
        top = z.max(1)
        return z.argmax(1), top + np.log(np.exp(z - top[:, None]).sum(1))

    def margin(x: F32) -> tuple[I64, F32]:
        p = np.sort(head.probabilities(x), axis=1)
        return head.logits(x).argmax(1), p[:, -1] - p[:, -2]

    def euclid(x: F32) -> tuple[I64, F32]:
        d2 = (x * x).sum(1)[:, None] - 2 * x @ means.T + (means * means).sum(1)[None]
        return head.logits(x).argmax(1), -d2.min(1)

    return {
        "head max-prob": field("probability"),
        "head margin": margin,
        "head energy": energy,
        "head max-logit/s": field("head"),
        "head + -eucl to mean": euclid,
        "head + local top-3": field("local"),
        "head + any top-5": field("any"),
        "head mixed (default)": field("confidence"),
    }


def oos_class_scorer(train: Split, n_classes: int) -> Scorer:
    """Head with an extra class trained on the data's unknown rows; score = 1 - P(unknown)."""
    y = np.where(train.y >= 0, train.y, n_classes)
    head = train_head(train.x, y, n_classes + 1)

    def score(x: F32) -> tuple[I64, F32]:
        p = head.probabilities(x)
        return p[:, :n_classes].argmax(1), p[:, :n_classes].max(1)

    return score


# ---------------------------------------------------------------- the table


def run(ds: Dataset) -> None:
    t0 = time.perf_counter()
    head = train_head(ds.train.x[ds.train.y >= 0], ds.train.y[ds.train.y >= 0], len(ds.names))
    took = time.perf_counter() - t0
    n_ex = int((ds.train.y >= 0).sum())
    print(f"\n## {ds.name}: {len(ds.names)} intents, {n_ex} exemplars, head trained in {took:.2f}s")
    print(
        f"val {len(ds.val.y)} rows ({int((ds.val.y < 0).sum())} unknown), "
        f"test {len(ds.test.y)} rows ({int((ds.test.y < 0).sum())} unknown)"
    )
    scorers = exemplar_scorers(ds.train, len(ds.names)) | head_scorers(head, ds.train)
    if (ds.train.y < 0).any():
        scorers["head max-prob +oos class"] = oos_class_scorer(ds.train, len(ds.names))
    cols = "in-acc unkR  unkP  all   thr"
    print(f"{'candidate':26s} {'closed':>6s} | max-acc: {cols} | keep-98: {cols} | orc95")
    for name, scorer in scorers.items():
        pv, sv = scorer(ds.val.x)
        pt, st = scorer(ds.test.x)
        ins = ds.test.y >= 0
        closed = 100 * float((pt[ins] == ds.test.y[ins]).mean())
        line = f"{name:26s} {closed:6.1f}"
        for thr in (threshold_max_acc(pv, sv, ds.val.y), threshold_keep(sv, ds.val.y)):
            f = figures(pt, st, ds.test.y, thr)
            line += " | " + " ".join(f"{v:5.1f}" for v in f) + f" {thr:6.3f}"
        orc = oracle_recall(pt, st, ds.test.y)
        print(line + (f" | {orc:5.1f}" if orc is not None else " |     -"), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="CLINC150 directory (jsonl splits)")
    ap.add_argument("--intents", type=Path, default=ROOT / "intents", help="shop intents dir")
    ap.add_argument("--model", type=Path, default=None, help="model dir (default: model store)")
    ap.add_argument(
        "--cache", type=Path, default=Path(tempfile.gettempdir()) / "intent-router-bench-vecs"
    )
    args = ap.parse_args()
    model = args.model
    if model is None:
        from router.model.contract import default_model_dir

        model = default_model_dir()
    run(load_clinc(args.data, args.cache, model))
    run(load_shop(args.intents, args.cache, model))


if __name__ == "__main__":
    main()
