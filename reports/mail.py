"""Send one message over SMTP (smtplib), and say whether a failure proves the server did not take it.

Why the distinction matters: the outbox re-sends a message whose fate is unknown with the *same* bytes and
Message-ID (receivers de-duplicate), but folds a message the server provably refused into the next, larger
digest. A failure before the server accepted DATA (connection refused, TLS or auth refused, sender/recipient
refused, DATA answered with an error) is definite; a timeout or disconnect while the DATA was in flight is
not.

Secrets: the user name and password are read from the environment variables the config names, at send time;
they never reach the database, the logs or an exception message.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol


class SmtpSettings(Protocol):
    """How a message leaves, as the config's `[mail]` says (read-only)."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def security(self) -> str: ...

    @property
    def username_env(self) -> str | None: ...

    @property
    def password_env(self) -> str | None: ...

    @property
    def timeout(self) -> float: ...

    @property
    def ca_file(self) -> Path | None: ...

    @property
    def allow_plaintext_auth(self) -> bool: ...

    @property
    def mbox(self) -> Path | None: ...


class SendError(Exception):
    """A send that did not complete. `definite`: the server provably did not accept the message."""

    def __init__(self, message: str, *, definite: bool):
        super().__init__(message)
        self.definite = definite


def _credentials(settings: SmtpSettings, env: Mapping[str, str]) -> tuple[str, str] | None:
    if not settings.username_env:
        return None
    missing = [name for name in (settings.username_env, settings.password_env) if name and not env.get(name)]
    if missing:
        raise SendError(
            f"SMTP credentials: environment variable {', '.join(missing)} is not set", definite=True
        )
    return env[settings.username_env], env[settings.password_env or ""]


def tls_context(settings: SmtpSettings) -> ssl.SSLContext:
    """Verified TLS (certificate and host name); `ca_file` adds a private relay's CA."""
    return ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)


def send_message(
    settings: SmtpSettings,
    message: bytes,
    sender: str,
    recipients: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> None:
    """Deliver `message` (complete RFC 5322 bytes) to `recipients`; raise SendError on failure."""
    mbox = getattr(settings, "mbox", None)  # (a settings object made by hand may not have one)
    if mbox:
        return append_to_mbox(mbox, message, sender, recipients)
    creds = _credentials(settings, os.environ if env is None else env)
    t = _Transaction(settings)
    try:
        smtp = t.connect()
        try:
            t.greet(smtp, creds)
            t.send(smtp, message, sender, recipients)
        finally:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()
    except SendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"{t.where} refused the login ({exc.smtp_code})", definite=True) from None
    except smtplib.SMTPResponseException as exc:
        # An error answer from the server: it did not take the message, whatever the phase.
        raise SendError(
            f"{t.where} answered {exc.smtp_code} during {t.phase}: {_text(exc.smtp_error)}", definite=True
        ) from None
    except (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError, ssl.SSLError, OSError) as exc:
        what = type(exc).__name__
        raise SendError(
            f"{t.where}: {what} during {t.phase}: {exc}"
            if str(exc)
            else f"{t.where}: {what} during {t.phase}",
            definite=t.phase != "data",  # in flight during DATA: the server may have queued it
        ) from None
    except smtplib.SMTPException as exc:
        raise SendError(
            f"{t.where}: {type(exc).__name__} during {t.phase}: {exc}", definite=t.phase != "data"
        ) from None


class _Transaction:
    """One SMTP conversation, step by step; `phase` says how far it got, which decides whether a failure
    means the server certainly did not take the message."""

    def __init__(self, settings: SmtpSettings):
        self.settings = settings
        self.where = f"{settings.host}:{settings.port}"
        self.phase = "connect"

    def connect(self) -> smtplib.SMTP:
        st = self.settings
        if st.security == "ssl":
            return smtplib.SMTP_SSL(st.host, st.port, timeout=st.timeout, context=tls_context(st))
        return smtplib.SMTP(st.host, st.port, timeout=st.timeout)

    def greet(self, smtp: smtplib.SMTP, creds: tuple[str, str] | None) -> None:
        """EHLO, STARTTLS when asked for, and the login (never without TLS unless allowed to loopback)."""
        self.phase = "ehlo"
        smtp.ehlo()
        if self.settings.security == "starttls":
            self.phase = "starttls"
            if not smtp.has_extn("starttls"):
                raise SendError(
                    f'{self.where} does not offer STARTTLS (mail.security = "starttls")', definite=True
                )
            smtp.starttls(context=tls_context(self.settings))
            smtp.ehlo()
        if creds:
            self.phase = "auth"
            if self.settings.security == "none" and not self.settings.allow_plaintext_auth:
                # The config refuses this too; a settings object built another way must not leak the password.
                raise SendError(
                    f'{self.where}: not logging in without TLS (mail.security = "none")', definite=True
                )
            smtp.login(*creds)

    def send(self, smtp: smtplib.SMTP, message: bytes, sender: str, recipients: Sequence[str]) -> None:
        self.phase = "envelope"
        code, resp = smtp.mail(sender)
        if code != 250:
            raise SendError(f"{self.where} refused the sender: {code} {_text(resp)}", definite=True)
        for rcpt in recipients:
            code, resp = smtp.rcpt(rcpt)
            if code not in (250, 251):
                raise SendError(f"{self.where} refused recipient {rcpt}: {code} {_text(resp)}", definite=True)
        self.phase = "data"
        code, resp = smtp.data(message)
        if code != 250:
            raise SendError(f"{self.where} rejected the message: {code} {_text(resp)}", definite=True)
        self.phase = "done"


def _text(resp: bytes | str) -> str:
    return resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)


def append_to_mbox(path: Path, message: bytes, sender: str, recipients: Sequence[str]) -> None:
    """The file transport (`[mail] mbox`): append the exact bytes to an mbox (locked while writing), with the
    envelope recipients in an X-Envelope-To header, as a local delivery agent would. Any mail reader opens it;
    `mailbox.mbox` reads it back."""
    import email
    import mailbox

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Addresses and whole digests: the operator's only, whatever the umask (and an older, looser file
        # is tightened).
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        box = mailbox.mbox(str(path))
        box.lock()
        try:
            msg = mailbox.mboxMessage(email.message_from_bytes(message))
            msg["X-Envelope-To"] = ", ".join(recipients)
            msg.set_from(sender)
            box.add(msg)
            box.flush()
        finally:
            box.unlock()
            box.close()
    except (OSError, mailbox.Error) as exc:
        raise SendError(f"mbox {path}: {exc}", definite=True) from None
