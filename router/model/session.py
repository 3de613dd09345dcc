"""The one place that builds an onnxruntime session, for every kind of graph.

Options (ARCHITECTURE.md, "Batching and threads" and "Memory"): numpy's BLAS capped at
one thread; all graph
optimisations; ``threads`` intra-op threads (default: the machine's cores) and one
inter-op thread; the CPU memory arena and memory patterns off (a smaller, steadier
peak RSS at the same speed); thread spinning left on (a lone request is faster).
Graphs with custom operators (a SentencePiece tokenizer inside the graph) get
onnxruntime-extensions' library registered; when that package is missing, the error
says so in one line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort
from threadpoolctl import threadpool_limits

from router.errors import ModelError

__all__ = ["default_threads", "inference_session"]


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def inference_session(
    path: Path,
    *,
    threads: int | None = None,
    custom_ops: bool = False,
    disabled_optimizers: Sequence[str] = (),
) -> ort.InferenceSession:
    """An onnxruntime CPU session for the graph at ``path``; ``ModelError`` if it cannot load.

    Also caps numpy's BLAS at one thread for the process: its threads spin after each
    product and fight onnxruntime's for the cores, and the index's products are small
    (ARCHITECTURE.md "Batching and threads"; for the text-level model, scoring 8 queries
    after a model run took 24 ms with two BLAS threads and 5 ms with one, loaded machine).
    """
    threadpool_limits(limits=1, user_api="blas")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    options.log_severity_level = 3
    if custom_ops:
        try:
            import onnxruntime_extensions
        except ImportError:
            raise ModelError(
                f"{path}: this graph needs onnxruntime-extensions for its custom operators: "
                "pip install 'intent-router[multilingual]'"
            ) from None
        options.register_custom_ops_library(onnxruntime_extensions.get_library_path())
    try:
        return ort.InferenceSession(
            str(path),
            options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=list(disabled_optimizers),
        )
    except Exception as exc:  # onnxruntime raises its own untyped errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "custom op" in str(exc).lower() or "no op registered" in str(exc).lower():
            first += " (a graph with custom operators needs onnxruntime-extensions)"
        raise ModelError(f"{path}: onnxruntime cannot load it: {first}") from exc
