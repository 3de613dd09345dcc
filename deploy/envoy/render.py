"""Render deploy/envoy/envoy.yaml.in for loopback replicas or for Kubernetes.

One template, two placements: what differs is where Envoy listens and which upstreams
it balances. On loopback (tests, benchmarks) the replicas are fixed ports on 127.0.0.1
(``STATIC``) and Envoy's own ports may be 0 (the kernel picks; read them back from the
admin interface). In Kubernetes the upstream is the replicas' headless Service, resolved
by Envoy (``STRICT_DNS``: every pod address it returns is an endpoint, refreshed every
5 s). Standard library only; the template is a ``string.Template`` (``$$`` is a
literal ``$``).

    python deploy/envoy/render.py kubernetes                # the config, to stdout
    python deploy/envoy/render.py kubernetes --update deploy/k8s/envoy.yaml
                                                            # rewrite the ConfigMap's copy
    python deploy/envoy/render.py loopback --upstream 127.0.0.1:50061 --upstream ...
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from string import Template

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "envoy.yaml.in"
#: The ConfigMap key holding the config in deploy/k8s/envoy.yaml, and its indentation.
CONFIGMAP_KEY = "  envoy.yaml: |"
CONFIGMAP_INDENT = "    "
_ENDPOINT_INDENT = " " * 14


@dataclass(frozen=True)
class Placement:
    """Where Envoy listens and what it balances."""

    upstreams: tuple[tuple[str, int], ...]
    discovery: str = "STATIC"
    listen_address: str = "127.0.0.1"
    grpc_port: int = 0
    ready_port: int = 0
    admin_port: int = 0


#: The Kubernetes placement: gRPC on 50051 and readiness on 9902 on the pod's addresses,
#: the admin interface on the pod's loopback only, the replicas by their headless Service
#: (a short name: Envoy's resolver uses the pod's search domains, so the same namespace).
KUBERNETES = Placement(
    upstreams=(("intent-router-headless", 50051),),
    discovery="STRICT_DNS",
    listen_address="0.0.0.0",  # noqa: S104 (in a pod: the pod's own addresses)
    grpc_port=50051,
    ready_port=9902,
    admin_port=9901,
)


def loopback(ports: list[int], grpc_port: int = 0, admin_port: int = 0) -> Placement:
    """Replicas on 127.0.0.1 at ``ports``; Envoy's ports picked by the kernel unless given."""
    return Placement(
        upstreams=tuple(("127.0.0.1", p) for p in ports),
        grpc_port=grpc_port,
        admin_port=admin_port,
    )


def render(placement: Placement) -> str:
    """The Envoy configuration (YAML) for ``placement``."""
    if placement.discovery not in {"STATIC", "STRICT_DNS"}:
        raise ValueError(f"discovery must be STATIC or STRICT_DNS, not {placement.discovery!r}")
    if not placement.upstreams:
        raise ValueError("at least one upstream is needed")
    endpoints = "\n".join(
        f"{_ENDPOINT_INDENT}- endpoint: "
        f"{{address: {{socket_address: {{address: {host}, port_value: {port}}}}}}}"
        for host, port in placement.upstreams
    )
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        endpoints=endpoints,
        discovery=placement.discovery,
        listen_address=placement.listen_address,
        grpc_port=placement.grpc_port,
        ready_port=placement.ready_port,
        admin_port=placement.admin_port,
    )


def configmap_copy(manifest: str) -> str:
    """The config held under ``envoy.yaml: |`` in a manifest's text, unindented."""
    lines = manifest.splitlines()
    start = lines.index(CONFIGMAP_KEY) + 1
    body: list[str] = []
    for line in lines[start:]:
        if line and not line.startswith(CONFIGMAP_INDENT):
            break
        body.append(line.removeprefix(CONFIGMAP_INDENT))
    while body and not body[-1]:
        body.pop()
    return "\n".join(body) + "\n"


def with_config(manifest: str, config: str) -> str:
    """``manifest`` with the block under ``envoy.yaml: |`` replaced by ``config``."""
    lines = manifest.splitlines()
    start = lines.index(CONFIGMAP_KEY) + 1
    end = start
    while end < len(lines) and (not lines[end] or lines[end].startswith(CONFIGMAP_INDENT)):
        end += 1
    block = [CONFIGMAP_INDENT + line if line else "" for line in config.splitlines()]
    return "\n".join([*lines[:start], *block, *lines[end:]]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="placement", required=True)
    k8s = sub.add_parser("kubernetes", help="the headless Service, STRICT_DNS")
    k8s.add_argument("--update", type=Path, metavar="MANIFEST", help="rewrite its ConfigMap copy")
    local = sub.add_parser("loopback", help="replicas on 127.0.0.1")
    local.add_argument("--upstream", action="append", required=True, metavar="127.0.0.1:PORT")
    local.add_argument("--grpc-port", type=int, default=0)
    local.add_argument("--admin-port", type=int, default=0)
    args = parser.parse_args(argv)
    if args.placement == "kubernetes":
        config = render(KUBERNETES)
        if args.update is not None:
            args.update.write_text(with_config(args.update.read_text(), config))
            return 0
    else:
        ports = [int(u.rsplit(":", 1)[1]) for u in args.upstream]
        config = render(loopback(ports, args.grpc_port, args.admin_port))
    sys.stdout.write(config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
