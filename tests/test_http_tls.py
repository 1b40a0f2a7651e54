"""HTTP checks and TLS: a plain `http://` check never builds a TLS client with the system's CA
certificates (reading every CA file costs more than a TCP check); credentials in URLs, headers
and query strings never leave the module; rejected certificates are explained in plain words
(certificates made here with `cryptography`, served by Python's `ssl`)."""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import ipaddress
import json
import os
import ssl
import subprocess
import threading
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def test_a_plain_http_check_never_reads_the_system_ca_certificates(module_binary, tmp_path, http_server):
    # A FIFO nobody writes to: opening it to read blocks for ever. Loading CA certificates for
    # a plain http:// URL would hang the module here.
    fifo = tmp_path / "ca-fifo.pem"
    os.mkfifo(fifo)
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"http": [f"{http_server}/healthz"], "deadline": "5s"}))
    proc = subprocess.run([str(module_binary), str(args_file)], capture_output=True, text=True, timeout=30,
                          env={"PATH": "/usr/bin:/bin", "SSL_CERT_FILE": str(fifo), "SSL_CERT_DIR": str(tmp_path)})
    result = json.loads(proc.stdout)
    (check,) = result["checks"]
    assert check["status"] == "pass", result



# ---------------------------------------------------------------------------------------------
# Secrets in URLs, headers and query strings never leave the module

URL_PASSWORD = "S3cretPW-url"
SHORT_PASSWORD = "Zq9"
HEADER_SECRET = "hdr-s3cret-value"
QUERY_SECRET = "qry-s3cret-token"
SECRETS = [URL_PASSWORD, SHORT_PASSWORD, HEADER_SECRET, QUERY_SECRET]


class _AuthHandler(http.server.BaseHTTPRequestHandler):
    """200 only with Basic `user:S3cretPW-url`, `X-Api-Key` and `?token=` all right; else 401."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        expected = "Basic " + base64.b64encode(f"user:{URL_PASSWORD}".encode()).decode()
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        authorised = (
            self.headers.get("Authorization") == expected
            and self.headers.get("X-Api-Key") == HEADER_SECRET
            and query.get("token") == [QUERY_SECRET]
        )
        body = b"authorised\n" if authorised else b"who are you?\n"
        self.send_response(200 if authorised else 401)
        if not authorised:
            self.send_header("WWW-Authenticate", 'Basic realm="health"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


@pytest.fixture
def auth_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AuthHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _every_byte(proc: subprocess.CompletedProcess, artifacts: list[Path]) -> str:
    return proc.stdout + proc.stderr + "".join(path.read_text() for path in artifacts)


def test_credentials_in_urls_headers_and_queries_never_reach_output_or_artifacts(
    module_binary, tmp_path, auth_server, closed_port
):
    base = f"127.0.0.1:{auth_server}"
    artifacts = [tmp_path / "summary.json", tmp_path / "junit.xml", tmp_path / "health.prom"]
    entry = {"headers": {"X-Api-Key": HEADER_SECRET}, "secret_query": {"token": QUERY_SECRET}}
    args = {
        "http": [
            {"url": f"http://user:{URL_PASSWORD}@{base}/healthz", **entry},
            {"url": f"http://user:wrong-{URL_PASSWORD}@{base}/denied", **entry},
            # A password too short to be masked inside other strings must still never show.
            {"url": f"http://user:{SHORT_PASSWORD}@127.0.0.1:{closed_port}/down"},
        ],
        "summary_path": str(artifacts[0]),
        "junit_path": str(artifacts[1]),
        "prometheus_path": str(artifacts[2]),
    }
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps(args))
    proc = subprocess.run([str(module_binary), str(args_file)], capture_output=True, text=True, timeout=60)
    result = json.loads(proc.stdout)

    checks = {check["name"]: check for check in result["checks"]}
    # Userinfo is stripped from the name; the credentials went out as Basic auth.
    assert checks[f"http://{base}/healthz"]["status"] == "pass", result
    assert checks[f"http://{base}/denied"]["message"] == "status 401, expected 2xx", result
    assert checks[f"http://127.0.0.1:{closed_port}/down"]["status"] == "fail", result
    everything = _every_byte(proc, artifacts)
    for secret in SECRETS:
        assert secret not in everything, f"{secret!r} leaked"
    # No userinfo anywhere but the masked echo of the arguments.
    shown = json.dumps({k: v for k, v in result.items() if k != "invocation"})
    assert "user:" not in shown and "user@" not in shown, shown
    for path in artifacts:
        assert "user:" not in path.read_text(), path


def test_credentials_stay_out_of_the_role_report_and_ansible_vvv_output(run_role, auth_server, tmp_path):
    base = f"127.0.0.1:{auth_server}"
    run = run_role(
        {
            "health_check_disks": [],
            "health_check_http": [
                {
                    "url": f"http://user:{URL_PASSWORD}@{base}/healthz",
                    "headers": {"X-Api-Key": HEADER_SECRET},
                    "secret_query": {"token": QUERY_SECRET},
                }
            ],
            "health_check_summary_path": str(tmp_path / "summary.json"),
        },
        "-vvv",
    )
    assert run.returncode == 0, run.describe()[-3000:]
    assert run.report, run.describe()[-3000:]
    everything = run.output + json.dumps(run.report) + json.dumps(run.result)
    everything += (tmp_path / "summary.json").read_text()
    for secret in [URL_PASSWORD, QUERY_SECRET]:
        assert secret not in everything, f"{secret!r} leaked"
    assert f"http://{base}/healthz" in json.dumps(run.report)


# ---------------------------------------------------------------------------------------------
# TLS rejections in plain words


def _certificate(subject_cn: str, key, issuer_cert, issuer_key, *, dns: list[str], ips: list[str],
                 not_after: datetime.datetime, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    issuer = issuer_cert.subject if issuer_cert is not None else name
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_after - datetime.timedelta(days=400) if ca else _now() - datetime.timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    else:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


class _OkHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _QuietTLSServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # the client refusing our certificate is the point


@contextlib.contextmanager
def _tls_servers(tmp_path: Path, chains: dict[str, tuple[x509.Certificate, Any]]) -> Iterator[dict[str, int]]:
    """One HTTPS server on 127.0.0.1 per certificate; yields their ports by name."""
    servers, ports = [], {}
    try:
        for label, (cert, key) in chains.items():
            cert_file, key_file = tmp_path / f"{label}.pem", tmp_path / f"{label}.key"
            cert_file.write_bytes(_pem(cert))
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert_file, key_file)
            server = _QuietTLSServer(("127.0.0.1", 0), _OkHandler)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            ports[label] = server.server_address[1]
        yield ports
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_tls_rejections_and_expiry_warnings_read_as_plain_words(module_binary, tmp_path):
    now = _now()
    ca_key, stranger_key = _key(), _key()
    ca = _certificate("Test CA", ca_key, None, None, dns=[], ips=[], not_after=now + datetime.timedelta(days=3650), ca=True)
    stranger = _certificate("Stranger CA", stranger_key, None, None, dns=[], ips=[],
                            not_after=now + datetime.timedelta(days=3650), ca=True)
    expired_at = now - datetime.timedelta(days=3, hours=1)
    soon_at = now + datetime.timedelta(days=1, hours=23, minutes=30)
    keys = {label: _key() for label in ["good", "self_signed", "stranger", "expired", "other_name", "soon"]}
    here = {"dns": ["localhost"], "ips": ["127.0.0.1"]}
    year = now + datetime.timedelta(days=365)
    chains = {
        "good": (_certificate("good", keys["good"], ca, ca_key, not_after=year, **here), keys["good"]),
        "self_signed": (_certificate("self", keys["self_signed"], None, None, not_after=year, **here), keys["self_signed"]),
        "stranger": (_certificate("stranger", keys["stranger"], stranger, stranger_key, not_after=year, **here), keys["stranger"]),
        "expired": (_certificate("expired", keys["expired"], ca, ca_key, not_after=expired_at, **here), keys["expired"]),
        "other_name": (_certificate("other", keys["other_name"], ca, ca_key, not_after=year, dns=["other.example"], ips=[]),
                       keys["other_name"]),
        "soon": (_certificate("soon", keys["soon"], ca, ca_key, not_after=soon_at, **here), keys["soon"]),
    }
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(_pem(ca))
    with _tls_servers(tmp_path, chains) as ports:
        http_args = [{"url": f"https://127.0.0.1:{port}/", "name": label} for label, port in ports.items()]
        http_args.append({"url": f"https://127.0.0.1:{ports['expired']}/", "name": "expired_unchecked",
                          "validate_certs": False})
        args_file = tmp_path / "args.json"
        args_file.write_text(json.dumps({"http": http_args}))
        proc = subprocess.run([str(module_binary), str(args_file)], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "SSL_CERT_FILE": str(ca_file), "SSL_CERT_DIR": str(tmp_path / "none")})
    result = json.loads(proc.stdout)
    checks = {check["name"]: check for check in result["checks"]}
    messages = {name: (check["status"], check["message"]) for name, check in checks.items()}
    expired_day = expired_at.strftime("%Y-%m-%d")

    assert messages["good"][0] == "pass", messages
    assert messages["self_signed"] == ("fail", "TLS handshake failed: self-signed certificate (not issued by a trusted CA)")
    assert messages["stranger"] == (
        "fail", "TLS handshake failed: unknown issuer: the certificate is not signed by a CA this host trusts")
    assert messages["expired"] == ("fail", f"TLS handshake failed: certificate expired 3 days ago on {expired_day}")
    assert messages["other_name"] == ("fail", "TLS handshake failed: certificate is for other.example, not 127.0.0.1")
    assert messages["soon"] == (
        "warn",
        f"certificate expires in 1 day 23 h on {soon_at.strftime('%Y-%m-%d')}, within cert_expiry_warn_days (14)",
    )
    assert messages["expired_unchecked"] == ("warn", f"certificate expired 3 days ago on {expired_day}")
    # Never a library's Debug text.
    for word in ["UnknownIssuer", "NotValidForName", "Expired", "InvalidCertificate", "Context", "{"]:
        assert not any(word in message for _, message in messages.values()), (word, messages)
