"""`serve --tls-cert/--tls-key`: HTTPS for boto3 and the aws CLI with a CA bundle, TLS 1.2 and
up only, and a new certificate taken on SIGHUP (new connections get it; a bad one is refused and
the old one kept)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import warnings
from pathlib import Path

import certifi
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from strongroom.testing import ServerProcess, free_port, wait_for

BIN = Path(sys.executable).parent


# An identity policy that allows reads only over TLS (aws:SecureTransport).
ONLY_OVER_TLS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    ],
}


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(directory: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("strongroom test CA"))
        .issuer_name(_name("strongroom test CA"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    bundle = directory / "ca.pem"
    bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, bundle


def issue(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path], common_name: str, cert_path: Path, key_path: Path
) -> x509.Certificate:
    """A server certificate for 127.0.0.1 and localhost, signed by ``ca``, written as PEM."""
    ca_key, ca_cert, _ = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    os.chmod(key_path, 0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def served_certificate(port: int, ca_bundle: Path, **limits: ssl.TLSVersion) -> x509.Certificate:
    """The certificate a new TLS connection to the server is given (verified against the CA)."""
    context = ssl.create_default_context(cafile=str(ca_bundle))
    for name, version in limits.items():
        setattr(context, name, version)
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der)


@pytest.fixture
def pki(tmp_path):  # type: ignore[no-untyped-def]
    ca = make_ca(tmp_path)
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    first = issue(ca, "strongroom one", cert, key)
    return ca, cert, key, first


def test_boto3_and_the_aws_cli_over_tls(pki):
    ca, cert, key, _ = pki
    with ServerProcess(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca_bundle=ca[2]) as srv:
        assert srv.endpoint.startswith("https://")
        assert f"listening on https://127.0.0.1:{srv.port}" in srv.log()
        sm = srv.client()
        sm.create_secret(Name="over-tls", SecretString="sealed")
        assert sm.get_secret_value(SecretId="over-tls")["SecretString"] == "sealed"
        result = subprocess.run(
            [str(BIN / "aws"), "secretsmanager", "get-secret-value", "--secret-id", "over-tls"]
            + ["--query", "SecretString", "--output", "text"],
            capture_output=True,
            text=True,
            env={**os.environ, **srv.aws_environment()},
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "sealed"
        # With the usual public CAs instead of ours the client refuses the server: the
        # certificate is what it checks.
        unverified = subprocess.run(
            [str(BIN / "aws"), "secretsmanager", "list-secrets"],
            capture_output=True,
            text=True,
            env={**os.environ, **srv.aws_environment(), "AWS_CA_BUNDLE": certifi.where()},
            timeout=60,
        )
        assert unverified.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in unverified.stderr
        # Plain HTTP on the TLS port gets no answer.
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as plain:
            plain.sendall(b"GET /_strongroom/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert not plain.recv(1024).startswith(b"HTTP/1.1 200")


def test_only_tls_1_2_and_up(pki):
    ca, cert, key, first = pki
    with ServerProcess(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca_bundle=ca[2]) as srv:
        assert served_certificate(srv.port, ca[2], maximum_version=ssl.TLSVersion.TLSv1_2) == first
        assert served_certificate(srv.port, ca[2], minimum_version=ssl.TLSVersion.TLSv1_3) == first
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client offer TLS 1.1 at all
        with warnings.catch_warnings():  # the client side of the test offers what no one should
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.TLSv1_1
            context.maximum_version = ssl.TLSVersion.TLSv1_1
        with (
            socket.create_connection(("127.0.0.1", srv.port), timeout=10) as raw,
            pytest.raises(ssl.SSLError, match=r"(?i)protocol version|unsupported protocol|UNEXPECTED_EOF"),
        ):
            context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_sighup_reloads_the_certificate(pki, tmp_path):
    ca, cert, key, first = pki
    with ServerProcess(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca_bundle=ca[2]) as srv:
        sm = srv.client()
        sm.list_secrets()
        assert served_certificate(srv.port, ca[2]) == first
        # The files replaced as a certificate renewal does, then SIGHUP.
        second = issue(ca, "strongroom two", tmp_path / "new.pem", tmp_path / "new.key")
        os.replace(tmp_path / "new.key", key)
        os.replace(tmp_path / "new.pem", cert)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "TLS certificate reloaded" in srv.log(), timeout=10, what="the reload")
        assert served_certificate(srv.port, ca[2]) == second
        sm.list_secrets()  # boto3's pooled connection, and new ones, still work
        srv.client().list_secrets()
        # A broken renewal (a key that is not the certificate's) is refused; the last good
        # certificate stays in service.
        issue(ca, "strongroom three", tmp_path / "third.pem", tmp_path / "third.key")
        os.replace(tmp_path / "third.pem", cert)
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "still serving the previous certificate" in srv.log(), timeout=10, what="the refusal")
        assert served_certificate(srv.port, ca[2]) == second
        srv.client().list_secrets()
        assert srv.proc.poll() is None


def test_tls_mistakes_are_one_line(pki, tmp_path):
    ca, cert, key, _ = pki
    other_cert, other_key = tmp_path / "other.pem", tmp_path / "other.key"
    issue(ca, "other", other_cert, other_key)
    cases = [
        (["--tls-cert", str(cert)], 2, "--tls-cert and --tls-key go together."),
        (
            ["--tls-cert", str(cert), "--tls-key", str(other_key)],
            1,
            f"strongroom: cannot use TLS with certificate {cert} and key {other_key}: KEY_VALUES_MISMATCH",
        ),
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)], 1, "none.pem: no such file"),
    ]
    for args, code, text in cases:
        result = subprocess.run(
            [sys.executable, "-m", "strongroom.cli.main", "serve", "--port", str(free_port())]
            + ["--data-dir", str(tmp_path / "data"), *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == code, result.stderr
        assert result.stderr.count("\n") == 1 and text in result.stderr, result.stderr
        assert "listening" not in result.stdout


def test_policies_see_secure_transport(pki):
    """aws:SecureTransport is "true" for a request that came over TLS, "false" over plain HTTP."""
    import json

    import boto3
    from botocore.config import Config

    ca, cert, key, _ = pki
    only_tls = ONLY_OVER_TLS
    answers = {}
    for tls in (True, False):
        args = ["--tls-cert", str(cert), "--tls-key", str(key)] if tls else []
        with ServerProcess(extra_args=args, ca_bundle=ca[2] if tls else None) as srv:
            srv.client().create_secret(Name="transported", SecretString="v")
            iam = srv.client("iam")
            iam.create_user(UserName="reader")
            iam.put_user_policy(UserName="reader", PolicyName="tls-only", PolicyDocument=json.dumps(only_tls))
            access = iam.create_access_key(UserName="reader")["AccessKey"]
            reader = boto3.client(
                "secretsmanager",
                endpoint_url=srv.endpoint,
                region_name="us-east-1",
                aws_access_key_id=access["AccessKeyId"],
                aws_secret_access_key=access["SecretAccessKey"],
                verify=str(ca[2]) if tls else None,
                config=Config(retries={"max_attempts": 1}),
            )
            try:
                answers[tls] = reader.get_secret_value(SecretId="transported")["SecretString"]
            except reader.exceptions.ClientError as exc:
                answers[tls] = exc.response["Error"]["Code"]
    assert answers == {True: "v", False: "AccessDeniedException"}


def test_a_trusted_proxy_says_the_request_came_over_tls():
    """Behind --trusted-proxies, X-Forwarded-Proto: https from the proxy counts as TLS; the same
    header from anyone else does not."""
    import json

    import boto3

    only_tls = ONLY_OVER_TLS
    answers = {}
    for proxies in ("127.0.0.1", None):
        with ServerProcess(extra_args=["--trusted-proxies", proxies] if proxies else []) as srv:
            srv.client().create_secret(Name="proxied", SecretString="v")
            iam = srv.client("iam")
            iam.create_user(UserName="reader")
            iam.put_user_policy(UserName="reader", PolicyName="tls-only", PolicyDocument=json.dumps(only_tls))
            access = iam.create_access_key(UserName="reader")["AccessKey"]
            reader = boto3.client(
                "secretsmanager",
                endpoint_url=srv.endpoint,
                region_name="us-east-1",
                aws_access_key_id=access["AccessKeyId"],
                aws_secret_access_key=access["SecretAccessKey"],
            )

            def as_the_proxy(request, **kwargs):  # type: ignore[no-untyped-def]
                request.headers["X-Forwarded-Proto"] = "https"  # added after signing, as a proxy does

            reader.meta.events.register("before-send.secrets-manager.GetSecretValue", as_the_proxy)
            try:
                answers[proxies] = reader.get_secret_value(SecretId="proxied")["SecretString"]
            except reader.exceptions.ClientError as exc:
                answers[proxies] = exc.response["Error"]["Code"]
    assert answers == {"127.0.0.1": "v", None: "AccessDeniedException"}


def test_functions_reach_a_tls_server(pki):
    """A function's SDK calls the server it runs under: with TLS on the API port, functions are
    given a loopback endpoint of their own (plain HTTP, still signed)."""
    import json

    from strongroom.testing.functions import create_function

    ca, cert, key, _ = pki
    source = (
        "import boto3\n\n\ndef handler(event, context):\n"
        "    return boto3.client('secretsmanager').get_secret_value(SecretId=event['id'])['SecretString']\n"
    )
    with ServerProcess(extra_args=["--tls-cert", str(cert), "--tls-key", str(key)], ca_bundle=ca[2]) as srv:
        srv.client().create_secret(Name="for-the-function", SecretString="reached")
        lam = srv.client("lambda")
        create_function(lam, srv.client("iam"), "reader", source, Handler="lambda_function.handler", Timeout=30)
        out = lam.invoke(FunctionName="reader", Payload=json.dumps({"id": "for-the-function"}))
        assert "FunctionError" not in out, out["Payload"].read()
        assert json.loads(out["Payload"].read()) == "reached"


def test_tls_with_workers_and_sighup_to_the_parent(pki, tmp_path):
    """`serve --workers 2` under TLS: every worker serves the certificate, SIGHUP to the parent
    (systemctl reload) reaches every worker, and each worker's own callback port for its functions
    stays plain loopback HTTP."""
    ca, cert, key, first = pki
    args = ["--tls-cert", str(cert), "--tls-key", str(key), "--workers", "2"]
    with ServerProcess(extra_args=args, ca_bundle=ca[2]) as srv:
        wait_for(lambda: "  workers: 2" in srv.log(), timeout=60, what="both workers started")
        callback_ports = [int(p) for p in re.findall(r"its functions call back on 127\.0\.0\.1:(\d+)", srv.log())]
        assert len(callback_ports) == 2, srv.log()
        srv.client().create_secret(Name="tls-workers", SecretString="sealed")
        assert served_certificate(srv.port, ca[2]) == first
        for port in callback_ports:  # plain HTTP, loopback: the health check answers without TLS
            with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
                plain.sendall(b"GET /_strongroom/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert plain.recv(1024).startswith(b"HTTP/1.1 200")
        second = issue(ca, "strongroom two", tmp_path / "new.pem", tmp_path / "new.key")
        os.replace(tmp_path / "new.key", key)
        os.replace(tmp_path / "new.pem", cert)
        assert srv.proc is not None
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: srv.log().count("TLS certificate reloaded") == 2, timeout=20, what="both workers reloaded")
        for _ in range(6):  # new connections, spread over both workers by the kernel
            assert served_certificate(srv.port, ca[2]) == second
        assert srv.client().get_secret_value(SecretId="tls-workers")["SecretString"] == "sealed"
        assert srv.proc.poll() is None
