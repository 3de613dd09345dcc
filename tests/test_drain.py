"""The drain before the stop: NOT_SERVING while still answering, so balancers move away.

End to end (SIGTERM under load behind Envoy, zero failed calls) in tests/test_envoy.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fakes import serving_fake
from grpc_health.v1 import health_pb2, health_pb2_grpc
from helpers import in_process, running, serve_configs

from router.api.v1 import router_pb2 as pb
from router.serving.server import SERVICE_NAME, ServerConfig


async def test_a_draining_server_says_not_serving_and_still_answers(bundled) -> None:
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0)
    async with running(config) as served:
        health = health_pb2_grpc.HealthStub(served.channel)
        statuses: dict[str, int] = {}

        async def poll() -> None:
            for name in ("", SERVICE_NAME):
                request = health_pb2.HealthCheckRequest(service=name)
                statuses[name] = (await health.Check(request, timeout=10)).status

        await poll()
        assert set(statuses.values()) == {health_pb2.HealthCheckResponse.SERVING}
        draining = asyncio.create_task(served.server.drain(60))
        try:
            while set(statuses.values()) != {health_pb2.HealthCheckResponse.NOT_SERVING}:
                await poll()
            answer = await served.stub.Classify(
                pb.ClassifyRequest(text="where is my parcel"), timeout=10
            )
            assert answer.intent == "track_delivery"
            assert not draining.done()
        finally:
            draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await draining


async def test_no_drain_leaves_health_as_it_is(bundled) -> None:
    config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0)
    async with running(config) as served:
        await served.server.drain(0)
        health = health_pb2_grpc.HealthStub(served.channel)
        status = (await health.Check(health_pb2.HealthCheckRequest(), timeout=10)).status
        assert status == health_pb2.HealthCheckResponse.SERVING


def test_the_drain_is_a_flag(monkeypatch) -> None:
    from router import cli

    seen = serve_configs(monkeypatch)
    monkeypatch.setattr(cli, "_resolve_model", Path)
    assert cli.main(["serve", "--intents", "intents", "--drain-seconds", "2.5", "--no-cache"]) == 0
    assert cli.main(["serve", "--intents", "intents", "--no-cache"]) == 0
    assert [c.drain_seconds for c in seen] == [2.5, 0.0]


def test_a_negative_drain_is_a_usage_error() -> None:
    code, _, err = in_process("serve", "--intents", "intents", "--drain-seconds", "-1")
    assert code == 2
    assert "--drain-seconds: must be in 0-2000000 seconds, got -1" in err


async def test_round_robin_clients_with_health_checks_leave_a_draining_server(bundled) -> None:
    """What README advises for clients that skip Envoy: gRPC's round_robin over every
    replica, with client-side health checks, sends nothing to a replica that drains."""
    import json

    import grpc

    from router.api.v1 import router_pb2_grpc as pb_grpc

    def config() -> ServerConfig:
        return ServerConfig(intents=bundled, encoder=serving_fake(), port=0)

    async with running(config()) as a, running(config()) as b:
        service_config = {
            "loadBalancingConfig": [{"round_robin": {}}],
            "healthCheckConfig": {"serviceName": SERVICE_NAME},
        }
        target = f"ipv4:127.0.0.1:{a.server.port},127.0.0.1:{b.server.port}"
        options = [("grpc.service_config", json.dumps(service_config))]
        request = pb.ClassifyRequest(text="where is my parcel")

        def answered() -> tuple[float, float]:
            return tuple(  # type: ignore[return-value]
                s.metrics.requests.labels("Classify", "OK")._value.get()
                for s in (a.server, b.server)
            )

        async with grpc.aio.insecure_channel(target, options=options) as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            for _ in range(20):
                await stub.Classify(request, timeout=10)
            assert min(answered()) > 0  # both replicas share the calls
            draining = asyncio.create_task(a.server.drain(60))
            try:
                health = health_pb2_grpc.HealthStub(a.channel)
                while (
                    await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
                ).status != health_pb2.HealthCheckResponse.NOT_SERVING:
                    await asyncio.sleep(0.01)
                # the channel watches each replica's health (a stream): once it hears,
                # every call goes to b; alternating calls would never make a streak of 20
                streak = 0
                for _ in range(200):
                    before = answered()[0]
                    await stub.Classify(request, timeout=10)
                    streak = streak + 1 if answered()[0] == before else 0
                    if streak == 20:
                        break
                assert streak == 20, "round_robin kept calling the draining replica"
            finally:
                draining.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await draining
