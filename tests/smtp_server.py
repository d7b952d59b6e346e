"""A real SMTP server (aiosmtpd) on loopback for the digest tests, with optional STARTTLS, implicit TLS and
AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA): the client trusts it through `mail.ca_file`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "policywatch test relay")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay.crt", directory / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class SmtpSink:
    """Collects every message the server accepts. `on_data(envelope)` runs before the 250 reply."""

    def __init__(
        self,
        *,
        port: int | None = None,
        starttls: tuple[Path, Path] | None = None,
        implicit_tls: tuple[Path, Path] | None = None,
        credentials: tuple[str, str] | None = None,
    ):
        self.port = port or free_port()
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []
        self.on_data: Callable[[object], None] | None = None
        self._lock = threading.Lock()
        kwargs: dict = {}
        if starttls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(*map(str, starttls))
            kwargs.update(tls_context=ctx, require_starttls=True)
        ssl_context = None
        if implicit_tls:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(*map(str, implicit_tls))
        if credentials:
            kwargs.update(
                authenticator=self._auth(credentials),
                auth_required=True,
                auth_require_tls=bool(starttls or implicit_tls),
            )
        self._args = dict(hostname="127.0.0.1", port=self.port, ssl_context=ssl_context, **kwargs)
        self.controller: Controller | None = None

    def _auth(self, credentials: tuple[str, str]):
        def check(server, session, envelope, mechanism, auth_data):
            ok = (
                isinstance(auth_data, LoginPassword)
                and (auth_data.login.decode(), auth_data.password.decode()) == credentials
            )
            if ok:
                self.logins.append(auth_data.login.decode())
            return AuthResult(success=ok, handled=False)

        return check

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            self.messages.append(
                (
                    envelope.mail_from,
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or envelope.content),
                )
            )
        if self.on_data is not None:
            self.on_data(envelope)
        return "250 Message accepted for delivery"

    def parsed(self) -> list[EmailMessage]:
        # type: ignore[misc]
        return [message_from_bytes(raw, policy=policy.default) for _f, _r, raw in self.messages]

    def to(self, address: str) -> list[EmailMessage]:
        return [
            m for (_f, rcpts, _raw), m in zip(self.messages, self.parsed(), strict=False) if address in rcpts
        ]

    def __enter__(self) -> SmtpSink:
        self.controller = Controller(
            self, **self._args
        )  # a stopped Controller cannot start again: one per outage
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        assert self.controller is not None
        self.controller.stop()
