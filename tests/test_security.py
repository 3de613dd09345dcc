"""TLS, mutual TLS and certificate rotation; bearer tokens; what Info shows without one."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fakes import serving_fake
from grpc_health.v1 import health_pb2, health_pb2_grpc

from router import cli
from router.api.v1 import router_pb2 as pb
from router.api.v1 import router_pb2_grpc as pb_grpc
from router.serving.security import CertificateFiles
from router.serving.server import RouterServer, ServerConfig

ROOT = Path(__file__).resolve().parent.parent


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    name: str, key, issuer_key, issuer: x509.Name | None, *, ca: bool
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


class Authority:
    """A test CA that issues certificates into PEM files."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = _certificate(name, self.key, self.key, None, ca=True)
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, name: str, directory: Path) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(name, key, self.key, self.cert.subject, ca=False)
        directory.mkdir(parents=True, exist_ok=True)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem(key))
        return cert_path, key_path


async def _start(config: ServerConfig) -> RouterServer:
    server = RouterServer(config)
    await server.start()
    return server


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=5
    )
    return reply.status


def _secure(port: int, ca: bytes, client: tuple[Path, Path] | None = None) -> grpc.aio.Channel:
    key = client[1].read_bytes() if client else None
    chain = client[0].read_bytes() if client else None
    credentials = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=chain)
    return grpc.aio.secure_channel(f"localhost:{port}", credentials)


# ------------------------------------------------------------------------- TLS


async def test_tls_serves_encrypted_and_refuses_plaintext(bundled, tmp_path: Path) -> None:
    ca = Authority("test-ca")
    cert, key = ca.issue("server", tmp_path)
    config = ServerConfig(
        intents=bundled, encoder=serving_fake(), port=0, tls=CertificateFiles(cert, key)
    )
    server = await _start(config)
    try:
        async with _secure(server.port, ca.pem) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as plain:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _health(plain)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(grace=0)


async def test_mutual_tls_needs_a_client_certificate(bundled, tmp_path: Path) -> None:
    ca = Authority("test-ca")
    cert, key = ca.issue("server", tmp_path)
    tls = CertificateFiles(cert, key, client_ca=tmp_path / "ca.pem")
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    server = await _start(ServerConfig(intents=bundled, encoder=serving_fake(), port=0, tls=tls))
    try:
        async with _secure(server.port, ca.pem) as anonymous:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _health(anonymous)
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        client = ca.issue("client", tmp_path / "client")
        async with _secure(server.port, ca.pem, client) as known:
            assert await _health(known) == health_pb2.HealthCheckResponse.SERVING
        stranger = Authority("other-ca").issue("client", tmp_path / "stranger")
        async with _secure(server.port, ca.pem, stranger) as unknown:
            with pytest.raises(grpc.aio.AioRpcError):
                await _health(unknown)
    finally:
        await server.stop(grace=0)


async def test_triage_reaches_a_mutual_tls_server(bundled, tmp_path: Path, monkeypatch) -> None:
    import asyncio
    import signal

    from helpers import in_process

    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the CLI runs on a thread
    ca = Authority("test-ca")
    cert, key = ca.issue("server", tmp_path)
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    tls = CertificateFiles(cert, key, client_ca=tmp_path / "ca.pem")
    server = await _start(ServerConfig(intents=bundled, encoder=serving_fake(), port=0, tls=tls))
    source = tmp_path / "t.jsonl"
    source.write_text('{"id": "1", "text": "where is my parcel"}\n')
    out = tmp_path / "o.jsonl"
    client_cert, client_key = ca.issue("client", tmp_path / "client")
    base = ("triage", str(source), "--server", f"localhost:{server.port}", "--out", str(out))
    try:
        code, _, err = await asyncio.to_thread(
            in_process, *base, "--tls-ca", str(tmp_path / "ca.pem"),
            "--tls-cert", str(client_cert), "--tls-key", str(client_key),
        )  # fmt: skip
        assert code == 0, err
        assert json.loads(out.read_text())["intent"] == "track_delivery"
        code, _, err = await asyncio.to_thread(in_process, *base, "--tls-cert", str(client_cert))
        assert code == 2 and "--tls-cert and --tls-key go together" in err
    finally:
        await server.stop(grace=0)


async def test_rotated_certificates_are_served_without_a_restart(bundled, tmp_path: Path) -> None:
    first, second = Authority("first-ca"), Authority("second-ca")
    cert, key = first.issue("server", tmp_path / "live")
    config = ServerConfig(
        intents=bundled, encoder=serving_fake(), port=0, tls=CertificateFiles(cert, key)
    )
    server = await _start(config)
    try:
        async with _secure(server.port, first.pem) as channel:
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        new_cert, new_key = second.issue("server", tmp_path / "next")
        for source, target in ((new_key, key), (new_cert, cert)):
            shutil.copyfile(source, target)
            os.utime(target, ns=(os.stat(target).st_atime_ns, os.stat(target).st_mtime_ns + 10**9))
        async with _secure(server.port, second.pem) as channel:  # a new connection
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
        async with _secure(server.port, first.pem) as channel:
            with pytest.raises(grpc.aio.AioRpcError):
                await _health(channel)  # the old certificate is no longer served
    finally:
        await server.stop(grace=0)


def test_tls_options_must_go_together(tmp_path: Path, capsys) -> None:
    code = cli.main(["serve", "--intents", "intents", "--tls-cert", str(tmp_path / "c")])
    assert code == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err


# ---------------------------------------------------------------------- tokens

TOKENS = "# callers\nreader-token\nops-token admin\n"


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return () if token is None else (("authorization", f"Bearer {token}"),)


@pytest.fixture
async def guarded(bundled, tmp_path: Path):
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    directory = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", directory, ignore=shutil.ignore_patterns("eval", "zh"))
    config = ServerConfig(
        intents=bundled, encoder=serving_fake(), port=0, auth_tokens=tokens,
        intents_path=directory, watch=False,
    )  # fmt: skip
    server = await _start(config)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield server, channel, tokens, directory
    await server.stop(grace=0)


async def test_classification_needs_a_token(guarded) -> None:
    server, channel, _, _ = guarded
    stub = pb_grpc.IntentRouterStub(channel)
    request = pb.ClassifyRequest(text="where is my parcel")
    for token in (None, "wrong-token", "reader-token "):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.Classify(request, metadata=_metadata(token.strip() + "x" if token else None))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await stub.Classify(request, metadata=_metadata("reader-token"))).alternatives
    assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING  # health is open
    count = server.metrics.registry.get_sample_value
    labels = {"method": "Classify", "code": "UNAUTHENTICATED"}
    assert count("intent_router_requests_total", labels) == 3


async def test_reload_needs_an_admin_token(guarded) -> None:
    _, channel, _, _ = guarded
    stub = pb_grpc.IntentRouterStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Reload(pb.ReloadRequest(), metadata=_metadata("reader-token"))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Reload(pb.ReloadRequest())
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await stub.Reload(pb.ReloadRequest(), metadata=_metadata("ops-token"))).ok


async def test_a_changed_token_file_is_read_again(guarded) -> None:
    _, channel, tokens, _ = guarded
    stub = pb_grpc.IntentRouterStub(channel)
    tokens.write_text("rotated-token\n")
    os.utime(tokens, ns=(os.stat(tokens).st_atime_ns, os.stat(tokens).st_mtime_ns + 10**9))
    request = pb.ClassifyRequest(text="hello")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Classify(request, metadata=_metadata("reader-token"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await stub.Classify(request, metadata=_metadata("rotated-token"))).alternatives


def _touch(path: Path) -> None:
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))


async def test_a_truncated_or_removed_token_file_keeps_the_last_tokens(guarded, caplog) -> None:
    """An editor's save truncates, then writes: between the two the file has 0 bytes,
    and the running server keeps its tokens rather than lock every caller out."""
    _, channel, tokens, _ = guarded
    stub = pb_grpc.IntentRouterStub(channel)
    request = pb.ClassifyRequest(text="hello")
    tokens.write_text("")
    _touch(tokens)
    assert (await stub.Classify(request, metadata=_metadata("reader-token"))).alternatives
    assert "token file is empty: keeping the last 2 tokens" in caplog.text
    tokens.unlink()
    assert (await stub.Classify(request, metadata=_metadata("reader-token"))).alternatives
    assert (await stub.Classify(request, metadata=_metadata("reader-token"))).alternatives
    assert caplog.text.count("cannot be read") == 1  # said once, not at every call
    tokens.write_text("rotated-token\n")  # back: read again
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Classify(request, metadata=_metadata("reader-token"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_token_file_whose_tokens_are_all_removed_revokes_them(guarded, caplog) -> None:
    _, channel, tokens, _ = guarded
    stub = pb_grpc.IntentRouterStub(channel)
    tokens.write_text("# reader-token\n# ops-token admin\n")  # a deliberate revocation
    _touch(tokens)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Classify(pb.ClassifyRequest(text="hello"), metadata=_metadata("ops-token"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "holds no tokens: every call that needs one is refused" in caplog.text


async def test_open_classification_still_guards_reload_and_hides_paths(
    bundled, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(TOKENS)
    directory = tmp_path / "intents"
    directory.mkdir()
    (directory / "shop.yaml").write_text("version: 1\nintents:\n  - name: a\n    examples: [x]\n")
    config = ServerConfig(
        intents=bundled, encoder=serving_fake(), port=0, auth_tokens=tokens,
        classify_open=True, intents_path=directory, watch=False,
    )  # fmt: skip
    server = await _start(config)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.IntentRouterStub(channel)
            assert (await stub.Classify(pb.ClassifyRequest(text="hello"))).alternatives
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Reload(pb.ReloadRequest())
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            (directory / "shop.yaml").write_text("version: 1\nintents: 3\n")
            failed = await stub.Reload(pb.ReloadRequest(), metadata=_metadata("ops-token"))
            assert not failed.ok and str(directory) in failed.errors[0]  # an admin sees paths
            anonymous = await stub.Info(pb.InfoRequest())
            assert anonymous.last_reload.errors
            assert not any(str(tmp_path) in e for e in anonymous.last_reload.errors)
            assert anonymous.last_reload.errors[0].startswith("shop.yaml:2:")
            known = await stub.Info(pb.InfoRequest(), metadata=_metadata("reader-token"))
            assert str(directory) in known.last_reload.errors[0]
    finally:
        await server.stop(grace=0)


# ------------------------------------------------------------------------ logs


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "router.cli", "--log-format", "json", "--log-level", "info",
         "serve", "--intents", str(tmp_path / "missing")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    logged = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert logged and {"time", "level", "logger", "message"} <= set(logged[0])
    assert logged[0]["message"].startswith("starting: intents")
