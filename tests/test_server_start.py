"""Start-up: a busy port, a bad host or a busy metrics port fail at once, in one line."""

from __future__ import annotations

import socket

import pytest
from fakes import serving_fake
from helpers import running

from router import cli
from router.api.v1 import router_pb2 as pb
from router.errors import StartError
from router.serving.server import RouterServer, ServerConfig


async def test_a_second_server_on_a_busy_port_fails_and_the_first_keeps_serving(bundled) -> None:
    first = ServerConfig(intents=bundled, encoder=serving_fake(), port=0)
    async with running(first) as served:
        second = RouterServer(
            ServerConfig(intents=bundled, encoder=serving_fake(), port=served.server.port)
        )
        with pytest.raises(StartError, match="Address already in use") as raised:
            await second.start()  # SO_REUSEPORT had let it bind and take half the calls
        assert raised.value.exit_code == 4
        for _ in range(20):  # every connection still reaches the first server
            reply = await served.stub.Classify(pb.ClassifyRequest(text="where is my parcel"))
            assert reply.revision == served.server.engine.snapshot.revision


async def test_a_host_that_is_not_an_address_fails_in_one_line(bundled) -> None:
    server = RouterServer(ServerConfig(intents=bundled, encoder=serving_fake(), host="256.1.1.1"))
    with pytest.raises(StartError, match="not a host name or address") as raised:
        await server.start()
    assert "\n" not in str(raised.value)


async def test_a_busy_metrics_port_fails_in_one_line(bundled) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = ServerConfig(intents=bundled, encoder=serving_fake(), port=0, metrics_port=port)
        with pytest.raises(StartError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            await RouterServer(config).start()


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_ports_out_of_range_are_usage_errors(port: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["serve", "--intents", "intents", "--port", port])
    assert exited.value.code == 2
    assert "--port" in capsys.readouterr().err
