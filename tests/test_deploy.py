"""deploy/k8s agrees with the code it runs, and what the schema checks cannot see.

`make check-deploy` validates the manifests against Kubernetes' schemas (strict) and
runs checkov; these tests check what neither knows: that the container's command parses
with the real `serve` parser, that probes, ports and the metrics annotation name what
the server registers and binds, that the termination period covers the preStop delay
plus the server's drain, that the intents mount can be hot-reloaded, and the
ServiceMonitor (a CRD, for which kubernetes-validate has no schema) against the fields
it uses and the Service it must select. Also that `buf breaking` does fail on a change
that would break clients (`make check-proto` runs it on the proto as it is).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from router import cli
from router.serving.server import SERVICE_NAME

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
#: What the container's process may take after SIGTERM's drain to exit.
EXIT_MARGIN_S = 5


def documents(name: str) -> list[dict[str, Any]]:
    with (K8S / name).open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def one(kind: str, name: str | None = None, file: str = "intent-router.yaml") -> dict[str, Any]:
    (found,) = [
        d
        for d in documents(file)
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    return found


@pytest.fixture(scope="module")
def pod() -> dict[str, Any]:
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]
    return spec


@pytest.fixture(scope="module")
def container(pod: dict[str, Any]) -> dict[str, Any]:
    (main,) = pod["spec"]["containers"]
    return dict(main)


@pytest.fixture(scope="module")
def serve_args(container: dict[str, Any]) -> Any:
    """The container's command, parsed by the real command line (an unknown flag fails)."""
    command = container["command"]
    assert command[:2] == ["intent-router", "serve"]
    return cli._parser().parse_args(command[1:])


def ports(container: dict[str, Any]) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for p in container["ports"]}


def test_the_command_binds_the_declared_ports(container, serve_args) -> None:
    assert serve_args.host == serve_args.metrics_host == "0.0.0.0"
    assert ports(container) == {"grpc": serve_args.port, "metrics": serve_args.metrics_port}


def test_probes_ask_the_health_service_for_the_router(container, serve_args) -> None:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": serve_args.port, "service": SERVICE_NAME}


def test_the_termination_period_covers_the_pre_stop_delay_and_the_drain(
    pod, container, serve_args
) -> None:
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pre_stop >= 1  # endpoints are removed before SIGTERM starts the drain
    needed = pre_stop + serve_args.grace + EXIT_MARGIN_S
    assert pod["spec"]["terminationGracePeriodSeconds"] >= needed


def test_intents_come_from_a_configmap_directory_without_sub_path(
    pod, container, serve_args
) -> None:
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    intents = mounts[str(serve_args.intents)]
    assert "subPath" not in intents and "subPathExpr" not in intents
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == intents["name"])
    assert "configMap" in volume
    assert not any("subPath" in m for m in container["volumeMounts"])


def test_every_written_path_is_on_an_empty_dir(pod, container, serve_args) -> None:
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    empty = {v["name"] for v in pod["spec"]["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in empty}
    assert "/tmp" in writable
    assert any(Path(serve_args.cache_dir).is_relative_to(p) for p in writable)


def test_the_pod_runs_hardened(pod, container) -> None:
    spec = pod["spec"]
    assert spec["automountServiceAccountToken"] is False
    account = one("ServiceAccount", spec["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    for context in (spec["securityContext"], container["securityContext"]):
        assert context["runAsNonRoot"] is True
        assert context["runAsUser"] == context["runAsGroup"] == 65532
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    image = container["image"]
    assert "@sha256:" in image or (":" in image and not image.endswith(":latest"))
    assert container["imagePullPolicy"] in ("IfNotPresent", "Always")


def test_resources_are_guaranteed_and_the_cpu_matches_the_threads(container, serve_args) -> None:
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        assert resources["requests"][kind] == resources["limits"][kind]  # Guaranteed QoS
    assert int(resources["requests"]["cpu"]) == serve_args.threads


def test_services_select_the_pods_and_name_their_ports(pod, container) -> None:
    labels = pod["metadata"]["labels"]
    headless = one("Service", "intent-router-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {p["name"]: p["port"] for p in headless["spec"]["ports"]} == ports(container)
    for service in (headless, one("Service", "intent-router")):
        assert service["spec"]["selector"].items() <= labels.items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports(container)


def test_the_scrape_annotations_name_the_metrics_endpoint(pod, serve_args) -> None:
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == serve_args.metrics_port
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_budget_and_the_autoscaler_follow_the_deployment(pod) -> None:
    labels = pod["metadata"]["labels"]
    budget = one("PodDisruptionBudget")
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    scaler = one("HorizontalPodAutoscaler")
    target = scaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", one("Deployment")["metadata"]["name"])
    assert scaler["spec"]["minReplicas"] >= 2  # the budget lets one go at a time
    assert "replicas" not in one("Deployment")["spec"]  # the autoscaler owns the count


#: The ServiceMonitor fields this project uses, as the Prometheus Operator's CRD
#: (monitoring.coreos.com/v1) types them; anything else is refused, like a typo.
DURATION = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
)
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["port"],
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}


def test_the_service_monitor_is_well_formed_and_scrapes_each_pod_once() -> None:
    (monitor,) = documents("servicemonitor.yaml")
    jsonschema.validate(monitor, SERVICE_MONITOR_SCHEMA)
    wanted = monitor["spec"]["selector"]["matchLabels"].items()
    services = [d for d in documents("intent-router.yaml") if d["kind"] == "Service"]
    selected = [s for s in services if wanted <= s["metadata"]["labels"].items()]
    assert [s["metadata"]["name"] for s in selected] == ["intent-router-headless"]
    names = {p["name"] for p in selected[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in names
        assert endpoint["path"] == "/metrics"


def test_the_network_policy_admits_the_ports_the_pods_serve(pod, container) -> None:
    (policy,) = documents("networkpolicy.yaml")
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    admitted = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    assert admitted == set(ports(container))


def test_the_kustomization_lists_files_that_exist() -> None:
    (kustomization,) = documents("kustomization.yaml")
    assert kustomization["resources"]
    for resource in kustomization["resources"]:
        assert (K8S / resource).is_file(), resource
        assert documents(resource)


def test_buf_breaking_fails_on_a_renamed_field(tmp_path: Path) -> None:
    """The contract check can fail: a field renamed in a copy of the proto is refused."""
    buf = BIN / "buf"
    assert buf.is_file(), "buf is missing: pip install -e '.[dev]' (the buf-bin wheel)"
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    proto = tmp_path / "proto" / "router" / "api" / "v1" / "router.proto"
    text = proto.read_text(encoding="utf-8")
    assert "  string revision = 5;" in text
    proto.write_text(text.replace("  string revision = 5;", "  string rev = 5;"), "utf-8")
    against = ["breaking", "proto", "--against", "proto/baseline.binpb"]
    done = subprocess.run(
        [str(buf), *against], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode != 0
    assert 'changed name from "revision" to "rev"' in done.stdout
