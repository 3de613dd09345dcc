"""What the serving benchmarks share: a closed-loop Classify load generator and the CPU
and memory of a process from /proc (bench/throughput.py, bench/replicas.py,
bench/fairness.py, bench/pod_memory.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import subprocess
import time
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds; waits for the exit."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def drive(
    port: int, pids: dict[str, int], clients: int, warmup: float, duration: float, texts: list[str]
) -> dict[str, Any]:
    """Runs in the client process: ``clients`` closed-loop Classify callers (one channel
    each) for warmup + duration. Returns the latencies (s) and error codes of the calls
    that ended inside the window, and ``cpu``: the CPU seconds over the window of this
    client ("client") and of each process in ``pids`` (by its name there)."""
    return asyncio.run(_drive(port, pids, clients, warmup, duration, texts))


async def _drive(
    port: int, pids: dict[str, int], clients: int, warmup: float, duration: float, texts: list[str]
) -> dict[str, Any]:
    import grpc

    from router.api.v1 import router_pb2 as pb
    from router.api.v1 import router_pb2_grpc as pb_grpc

    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(clients)]
    await asyncio.gather(*(c.channel_ready() for c in channels))
    requests = [pb.ClassifyRequest(text=t, top_k=3) for t in texts]
    counter = itertools.count(random.randrange(len(texts)))
    latencies: list[float] = []
    errors: dict[str, int] = {}
    begin = time.perf_counter() + warmup
    end = begin + duration
    cpu: dict[str, float] = {}

    async def caller(channel: grpc.aio.Channel) -> None:
        stub = pb_grpc.IntentRouterStub(channel)
        while True:
            started = time.perf_counter()
            if started >= end:
                return
            try:
                await stub.Classify(requests[next(counter) % len(requests)], timeout=30)
                failed = None
            except grpc.aio.AioRpcError as exc:
                failed = exc.code().name
            done = time.perf_counter()
            if begin <= done <= end:
                if failed is None:
                    latencies.append(done - started)
                else:
                    errors[failed] = errors.get(failed, 0) + 1

    def cpu_now() -> dict[str, float]:
        return {"client": time.process_time()} | {k: proc_cpu_seconds(p) for k, p in pids.items()}

    async def meter() -> None:
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        before = cpu_now()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        after = cpu_now()
        cpu.update({k: after[k] - before[k] for k in after})

    await asyncio.gather(meter(), *(caller(channels[k]) for k in range(clients)))
    for c in channels:
        await c.close()
    return {"latencies": latencies, "errors": errors, "duration": duration, "cpu": cpu}
