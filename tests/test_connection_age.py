"""Keepalive and maximum connection age: the ``serve`` flags reach gRPC, and an aged
connection is closed so that its client reconnects (how clients of a plain Kubernetes
Service spread over new replicas). Real servers on the fake encoder."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from fakes import serving_fake
from helpers import in_process, running, serve_configs

from router.api.v1 import router_pb2 as pb
from router.routing.intents import IntentSet
from router.serving.server import ServerConfig, connection_options

ROOT = Path(__file__).resolve().parent.parent


async def test_an_aged_connection_is_closed_and_the_client_reconnects(bundled: IntentSet) -> None:
    config = ServerConfig(
        intents=bundled,
        encoder=serving_fake(),
        port=0,
        max_connection_age_seconds=0.5,
        max_connection_age_grace_seconds=0.5,
    )
    async with running(config) as run:
        assert (await run.stub.Classify(pb.ClassifyRequest(text="refund please"))).intent
        assert run.channel.get_state() == grpc.ChannelConnectivity.READY
        # the server's GOAWAY takes the channel out of READY (a bounded wait: it fails,
        # never passes, on time-out)
        changed = run.channel.wait_for_state_change(grpc.ChannelConnectivity.READY)
        await asyncio.wait_for(changed, 30)
        assert run.channel.get_state() != grpc.ChannelConnectivity.READY
        # the next call opens a new connection and is answered
        reply = await run.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
        assert reply.intent
        assert run.channel.get_state() == grpc.ChannelConnectivity.READY


def test_connection_options_are_whole_milliseconds(bundled: IntentSet) -> None:
    config = ServerConfig(
        intents=bundled,
        encoder=serving_fake(),
        keepalive_seconds=20,
        max_connection_age_seconds=300,
        max_connection_age_grace_seconds=12.5,
    )
    options = dict(connection_options(config))
    assert options["grpc.keepalive_time_ms"] == 20_000
    assert options["grpc.max_connection_age_ms"] == 300_000
    assert options["grpc.max_connection_age_grace_ms"] == 12_500


def test_serve_flags_reach_the_server_config(
    fake_model: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = serve_configs(monkeypatch)
    code, _, err = in_process(
        "serve", "--intents", str(ROOT / "intents"), "--keepalive", "20",
        "--max-connection-age", "300", "--max-connection-age-grace", "45",
    )  # fmt: skip
    assert code == 0, err
    (config,) = seen
    assert config.keepalive_seconds == 20
    assert config.max_connection_age_seconds == 300
    assert config.max_connection_age_grace_seconds == 45


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_a_bad_connection_age_is_a_usage_error(value: str) -> None:
    code, _, err = in_process(
        "serve", "--intents", str(ROOT / "intents"), "--max-connection-age", value
    )
    assert code == 2
    assert "--max-connection-age" in err
