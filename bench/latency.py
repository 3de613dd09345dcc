"""Classify latency over gRPC on loopback vs the model's own in-process time, one run.

Starts `intent-router serve` as a separate process on a free port with the bundled
intents, sends N sequential Classify calls for one short utterance from this process,
then times tokenise + model + pooling for the same text in this process with the same
thread count. Prints p50/p99 of both and the overhead the service adds.

    python bench/latency.py [--n 1000] [--threads 2] [--text "where is my parcel"]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.encoder import Encoder
from router.modelstore import default_model_dir

ROOT = Path(__file__).resolve().parent.parent


def percentiles(samples: list[float]) -> tuple[float, float]:
    arr = np.array(samples) * 1e3
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


def bench_grpc(text: str, n: int, threads: int) -> tuple[list[float], list[float]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "router.cli", "--log-level", "warning", "serve",
         "--intents", str(ROOT / "intents"), "--port", "0", "--threads", str(threads)],
        stdout=subprocess.PIPE, text=True, env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        wall: list[float] = []
        server_model: list[float] = []
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            request = pb.ClassifyRequest(text=text, top_k=3)
            for i in range(n + 100):
                start = time.perf_counter()
                reply = stub.Classify(request)
                if i >= 100:  # warm-up
                    wall.append(time.perf_counter() - start)
                    server_model.append(reply.timings.encode_ms / 1e3)
        return wall, server_model
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bench_model(text: str, n: int, threads: int) -> list[float]:
    encoder = Encoder(default_model_dir(), threads=threads)
    samples = []
    for i in range(n + 100):
        start = time.perf_counter()
        encoder.encode([text])
        if i >= 100:
            samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--text", default="where is my parcel")
    args = parser.parse_args()

    wall, server_model = bench_grpc(args.text, args.n, args.threads)
    model = bench_model(args.text, args.n, args.threads)
    g50, g99 = percentiles(wall)
    m50, m99 = percentiles(model)
    s50, s99 = percentiles(server_model)
    print(f"text: {args.text!r}, {args.n} calls, {args.threads} onnxruntime threads")
    print(f"{'path':<44}{'p50 ms':>8}{'p99 ms':>8}")
    print(f"{'Classify over gRPC (loopback, client wall)':<44}{g50:>8.2f}{g99:>8.2f}")
    print(f"{'  of which encode inside the server':<44}{s50:>8.2f}{s99:>8.2f}")
    print(f"{'model in process (tokenise+encode+pool)':<44}{m50:>8.2f}{m99:>8.2f}")
    print(f"service overhead at p50: {g50 - m50:+.2f} ms (goal <= 1 ms); ratio {g50 / m50:.2f}x")


if __name__ == "__main__":
    main()
