"""int8 MiniLM graphs against the fp32 one: speed, closeness, batch dependence, accuracy.

The pulled MiniLM directory is copied to a temporary directory under /tmp and its graph
quantised there in each variant asked for; the copy's manifest gets the new graph's
sha256 (so the encoder's fingerprint, hence the vector cache, tells the graphs apart)
and keeps the name ``minilm``, so every graph is judged at the same thresholds, the
intents' own (not re-tuned per graph). Each is loaded as ``serve`` loads a directory.

Variants:

- ``qint8``, ``qint8-pc``, ``quint8``, ``quint8-pc``: onnxruntime's ``quantize_dynamic``
  (weights int8 or uint8, per tensor or per output channel; each run measures its
  activations' range, so a text's vector moves with its batch-mates);
- ``static-qop``: ``quantize_static`` (QLinearMatMul, weights int8 per channel,
  activations uint8; MinMax over the calibration sentences, each alone), which also
  quantises each product's output;
- ``fixed``: what ``model pull --model minilm-int8`` builds (``graph.quantize_int8``):
  ``qint8-pc`` with each run-time range replaced by the fixed one measured on the
  calibration sentences (router/model/calibration_en.txt).

In one run, alternating encoders round by round (so other work's load falls on all):

- sentences/s of ``encoder.embed`` (what the engine calls) on the bundled tickets'
  passages (``router.routing.tickets.passages`` over tickets_val + tickets_test, in
  batches of 32 as ``Engine`` cuts them) and on the bundled chat lines
  (intents/eval/test.jsonl, batches of 32);
- cosine of each int8 vector with the fp32 one (passages and chat lines) and with the
  golden reference vectors (sentence-transformers, /work/shared/data/golden);
- batch dependence: the largest change of a passage's unit vector (and the lowest
  cosine) between embedding it alone and inside its group of 32 tickets' passages;
- accuracy on the bundled English eval (val.jsonl and test.jsonl as ``eval``,
  tickets_test.jsonl as ``eval`` on tickets), thresholds as the intents give them.

The implied triage / sentence-transformers ratio is today's measured ratio
(``--triage-ratio``, bench/triage.py: 1.18x) times the int8/fp32 passage speed-up,
since triage spends 93-98% of its time in the model.

    .venv/bin/python bench/int8.py                   # qint8-pc, static-qop, fixed
    .venv/bin/python bench/int8.py --variants qint8,quint8 --rounds 5 --no-record
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from _model import add_model_flag, open_model
from _record import Run, add_record_flag

ROOT = Path(__file__).resolve().parent.parent
INTENTS = ROOT / "intents"
EVAL = INTENTS / "eval"
GOLDEN = Path("/work/shared/data/golden/minilm_reference.json")
BATCH = 32

#: name -> (weight type, per channel) of quantize_dynamic; "static-qop" and "fixed" below
VARIANTS: dict[str, tuple[str, bool]] = {
    "qint8": ("QInt8", False),
    "qint8-pc": ("QInt8", True),
    "quint8": ("QUInt8", False),
    "quint8-pc": ("QUInt8", True),
    "static-qop": ("QInt8", True),
    "fixed": ("QInt8", True),
}
DEFAULT_VARIANTS = ("qint8-pc", "static-qop", "fixed")
#: passages compared alone and in their group, for the batch dependence
DEPENDENCE_SAMPLE = 300


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def quantized_dir(source: Path, work: Path, name: str) -> Path:
    """A copy of ``source`` under ``work`` with its graph quantised as ``name`` says."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from router.model.contract import MANIFEST_FILE, MODEL_FILE, sha256_of

    weight, per_channel = VARIANTS[name]
    target = work / name
    target.mkdir()
    for item in source.iterdir():
        if item.name != MODEL_FILE:
            shutil.copy2(item, target / item.name)
    if name == "fixed":
        from router.model import graph
        from router.model.pull import calibration_texts

        shutil.copy2(source / MODEL_FILE, target / MODEL_FILE)
        graph.quantize_int8(target / MODEL_FILE, target / "tokenizer.json", calibration_texts())
    elif name == "static-qop":
        static_qop(source, target)
    else:
        quantize_dynamic(
            source / MODEL_FILE,
            target / MODEL_FILE,
            weight_type=QuantType[weight],
            per_channel=per_channel,
        )
    manifest_path = target / MANIFEST_FILE
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text("utf-8"))
        manifest.setdefault("files", {})[MODEL_FILE] = sha256_of(target / MODEL_FILE)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return target


def static_qop(source: Path, target: Path) -> None:
    """``quantize_static``, QOperator format, MinMax over the calibration sentences alone."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from tokenizers import Tokenizer

    from router.model.pull import calibration_texts

    model = onnx.load(str(source / "model.onnx"))
    for node in model.graph.node:  # else the attention output products are skipped
        if node.op_type == "MultiHeadAttention":
            model.graph.value_info.append(
                onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, None)
            )
    typed = target / "typed.onnx"
    onnx.save(model, str(typed))
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    feeds = []
    for text in calibration_texts():
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        n = ids.shape[1]
        feeds.append(
            {
                "input_ids": ids,
                "position_ids": np.arange(n, dtype=np.int64)[None],
                "attention_mask_3d": np.ones((1, n, n), dtype=np.int32),
                "token_type_ids": np.zeros_like(ids),
            }
        )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.rows = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.rows, None)

    quantize_static(
        str(typed), str(target / "model.onnx"), Reader(), quant_format=QuantFormat.QOperator,
        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
        op_types_to_quantize=["MatMul"], calibrate_method=CalibrationMethod.MinMax,
    )  # fmt: skip
    typed.unlink()


def batch_dependence(encoder: Any, groups: list[list[str]]) -> dict[str, float]:
    """A sample of passages embedded alone and inside their group: the largest change of a
    unit vector's component and the lowest cosine between the two."""
    step = max(1, sum(len(g) for g in groups) // DEPENDENCE_SAMPLE)
    worst_abs, worst_cos, k = 0.0, 1.0, 0
    for group in groups:
        inside, _ = embed_all(encoder, [group])
        for i, text in enumerate(group):
            if k % step == 0:
                alone, _ = embed_all(encoder, [[text]])
                worst_abs = max(worst_abs, float(np.abs(alone[0] - inside[i]).max()))
                worst_cos = min(worst_cos, float(alone[0] @ inside[i]))
            k += 1
    return {"max_abs": worst_abs, "min_cosine": worst_cos}


def embed_all(encoder: Any, groups: list[list[str]]) -> tuple[npt.NDArray[np.float32], float]:
    """Sentence vectors (unit rows) of every text, one ``embed`` call a group, and the
    seconds: a group is what the engine embeds in one call (a batch of 32 chat lines,
    or the passages of 32 tickets, which the encoder cuts into its own runs)."""
    out = []
    t0 = time.perf_counter()
    for group in groups:
        out.append(encoder.embed(group))
    seconds = time.perf_counter() - t0
    rows = np.concatenate(out)[:, -encoder.dimension :]
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    return unit.astype(np.float32), seconds


def cosine_stats(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {
        "mean": float(cos.mean()),
        "min": float(cos.min()),
        "p05": float(np.percentile(cos, 5)),
    }


def accuracy(encoder: Any) -> dict[str, Any]:
    from router.quality.run import run_eval, run_ticket_eval
    from router.routing.engine import Engine
    from router.routing.intents import load_intents

    intents = load_intents(INTENTS)
    engine = Engine(encoder)
    val = run_eval(engine, intents, EVAL / "val.jsonl", progress=False).evaluation()
    chat = run_eval(engine, intents, EVAL / "test.jsonl", progress=False).evaluation()
    tickets = run_ticket_eval(engine, intents, EVAL / "tickets_test.jsonl", load=False)
    card = tickets.scorecard()
    m = chat.metrics
    return {
        "threshold_source": chat.threshold_source,
        "default_threshold": chat.default_threshold,
        "val": {"rows": val.rows, "accuracy": val.metrics.accuracy},
        "test": {
            "rows": chat.rows,
            "accuracy": m.accuracy,
            "in_scope_accuracy": m.in_scope_accuracy,
            "unknown_recall": m.unknown_recall,
            "macro_f1": m.macro_f1,
        },
        "tickets_test": {
            "tickets": card.tickets,
            "exact_match": card.exact_match,
            "micro_f1": card.micro_f1,
            "single_top1": card.single_top1,
            "multi_found": card.multi_found,
            "unknown_recall": card.unknown_recall,
        },
    }


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:6.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_model_flag(parser)
    add_record_flag(parser)
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"comma-separated, of {', '.join(VARIANTS)} (default {','.join(DEFAULT_VARIANTS)})",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per encoder")
    parser.add_argument(
        "--triage-ratio",
        type=float,
        default=1.18,
        help="today's triage / sentence-transformers ratio (bench/triage.py), scaled by "
        "the passage speed-up",
    )
    args = parser.parse_args()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    run = Run("int8", args)

    from router.model.loading import load_encoder
    from router.routing.engine import Engine
    from router.routing.intents import load_intents

    fp32 = open_model(args.model)
    source = fp32.choice.directory
    encoders: dict[str, Any] = {"fp32": fp32.encoder}
    work = Path(tempfile.mkdtemp(prefix="int8-", dir="/tmp"))
    sizes = {"fp32": (source / "model.onnx").stat().st_size}
    try:
        for name in names:
            t0 = time.perf_counter()
            directory = quantized_dir(source, work, name)
            encoders[name] = load_encoder(directory, threads=fp32.threads)
            sizes[name] = (directory / "model.onnx").stat().st_size
            print(f"quantised {name} in {time.perf_counter() - t0:.1f} s: {directory}")

        tickets = read_jsonl(EVAL / "tickets_val.jsonl") + read_jsonl(EVAL / "tickets_test.jsonl")
        # the passages the engine embeds (Engine._passages: tickets.passages under the
        # intents' ticket settings), the passages of 32 tickets to an embed call as
        # Engine.score_tickets is given them by triage and run_ticket_eval
        engine = Engine(fp32.encoder)
        engine.load(load_intents(INTENTS))
        per_ticket = [
            [p.text for p in engine._passages(t["text"], t.get("subject", ""))] for t in tickets
        ]
        del engine
        passage_groups = [
            [c for lst in per_ticket[i : i + BATCH] for c in lst]
            for i in range(0, len(per_ticket), BATCH)
        ]
        passage_texts = [c for g in passage_groups for c in g]
        chat_texts = [r["text"] for r in read_jsonl(EVAL / "test.jsonl")]
        chat_groups = [chat_texts[i : i + BATCH] for i in range(0, len(chat_texts), BATCH)]
        golden = json.loads(GOLDEN.read_text("utf-8"))["items"]
        golden_texts = [g["text"] for g in golden]
        golden_vectors = np.asarray([g["embedding"] for g in golden], dtype=np.float32)
        golden_vectors /= np.linalg.norm(golden_vectors, axis=1, keepdims=True)
        sets = {"passages": passage_groups, "chat": chat_groups}
        counts = {"passages": len(passage_texts), "chat": len(chat_texts)}
        print(
            f"{len(tickets)} tickets -> {len(passage_texts)} passages; "
            f"{len(chat_texts)} chat lines; threads {fp32.threads}"
        )

        # warm-up, and the vectors compared
        vectors: dict[str, dict[str, npt.NDArray[np.float32]]] = {}
        for name, enc in encoders.items():
            vectors[name] = {k: embed_all(enc, texts)[0] for k, texts in sets.items()}
            vectors[name]["golden"] = embed_all(enc, [[t] for t in golden_texts])[0]

        seconds: dict[str, dict[str, float]] = {n: dict.fromkeys(sets, 0.0) for n in encoders}
        per_round: dict[str, dict[str, list[float]]] = {n: {k: [] for k in sets} for n in encoders}
        for k in range(args.rounds):
            order = list(encoders) if k % 2 == 0 else list(reversed(encoders))
            for name in order:
                for key, texts in sets.items():
                    _, s = embed_all(encoders[name], texts)
                    seconds[name][key] += s
                    per_round[name][key].append(counts[key] / s)
            print(f"  round {k + 1}/{args.rounds} done")

        rates = {
            n: {key: counts[key] * args.rounds / seconds[n][key] for key in sets} for n in encoders
        }
        cosines = {
            n: {
                "vs_fp32_passages": cosine_stats(
                    vectors[n]["passages"], vectors["fp32"]["passages"]
                ),
                "vs_fp32_chat": cosine_stats(vectors[n]["chat"], vectors["fp32"]["chat"]),
                "vs_golden": cosine_stats(vectors[n]["golden"], golden_vectors),
            }
            for n in encoders
        }
        dependence = {}
        for name, enc in encoders.items():
            dependence[name] = batch_dependence(enc, passage_groups)
        quality = {}
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            quality[name] = accuracy(enc)
            print(f"  accuracy {name}: {time.perf_counter() - t0:.1f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rates["fp32"]
    print()
    print(
        f"{'graph':10} {'MB':>5} {'passages/s':>10} {'x fp32':>6} {'chat/s':>7} {'x fp32':>6} "
        f"{'triage/ST':>9} {'cos fp32 psg mean/min':>21} {'chat mean/min':>13} "
        f"{'golden mean/min':>15} {'batch dep abs/cos':>17} {'val acc':>7} "
        f"{'test acc':>8} {'d':>5} {'tkt EM':>6} {'d':>5} {'tkt F1':>6} {'d':>5}"
    )
    figures_graphs: dict[str, Any] = {}
    q0 = quality["fp32"]
    for name in encoders:
        r = rates[name]
        sp_p, sp_c = r["passages"] / base["passages"], r["chat"] / base["chat"]
        c = cosines[name]
        q = quality[name]
        d_acc = q["test"]["accuracy"] - q0["test"]["accuracy"]
        d_em = q["tickets_test"]["exact_match"] - q0["tickets_test"]["exact_match"]
        f1, f1_0 = q["tickets_test"]["micro_f1"], q0["tickets_test"]["micro_f1"]
        d_f1 = (f1 - f1_0) if f1 is not None and f1_0 is not None else None
        print(
            f"{name:10} {sizes[name] / 1e6:5.1f} {r['passages']:10.1f} {sp_p:6.2f} "
            f"{r['chat']:7.1f} {sp_c:6.2f} {args.triage_ratio * sp_p:8.2f}x "
            f"{c['vs_fp32_passages']['mean']:14.4f}/{c['vs_fp32_passages']['min']:.4f} "
            f"{c['vs_fp32_chat']['mean']:6.4f}/{c['vs_fp32_chat']['min']:.4f} "
            f"{c['vs_golden']['mean']:8.4f}/{c['vs_golden']['min']:.4f} "
            f"{dependence[name]['max_abs']:9.1e}/{dependence[name]['min_cosine']:.4f} "
            f"{_pct(q['val']['accuracy']):>7} "
            f"{_pct(q['test']['accuracy']):>8} "
            f"{100 * d_acc:+5.1f} {_pct(q['tickets_test']['exact_match']):>6} {100 * d_em:+5.1f} "
            f"{_pct(f1):>6} {'  -  ' if d_f1 is None else f'{100 * d_f1:+5.1f}'}"
        )
        figures_graphs[name] = {
            "variant": VARIANTS.get(name),
            "model_bytes": sizes[name],
            "passages_per_s": r["passages"],
            "chat_per_s": r["chat"],
            "passages_per_s_rounds": per_round[name]["passages"],
            "chat_per_s_rounds": per_round[name]["chat"],
            "speedup_passages": sp_p,
            "speedup_chat": sp_c,
            "implied_triage_vs_st": args.triage_ratio * sp_p,
            "cosine": c,
            "batch_dependence": dependence[name],
            "accuracy": q,
            "accuracy_delta_points": {
                "test_accuracy": 100 * d_acc,
                "tickets_exact_match": 100 * d_em,
                "tickets_micro_f1": None if d_f1 is None else 100 * d_f1,
            },
        }
    print(
        f"thresholds NOT re-tuned for the int8 graphs: the same for every graph, "
        f"{q0['threshold_source']}, default {q0['default_threshold']}; triage/ST = "
        f"{args.triage_ratio} x passage speed-up (bench/triage.py's measured ratio)"
    )
    run.finish(
        {
            "model": fp32.record(),
            "passages": len(passage_texts),
            "tickets": len(tickets),
            "chat_lines": len(chat_texts),
            "golden_items": len(golden_texts),
            "batch": BATCH,
            "rounds": args.rounds,
            "triage_ratio_today": args.triage_ratio,
            "thresholds_retuned": False,
            "graphs": figures_graphs,
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
