"""Email plugin against a real SMTP server (aiosmtpd) that requires STARTTLS and AUTH."""

from __future__ import annotations

import email
import ssl
import subprocess

import pytest
from notify_helpers import free_port, make_event, make_notification, send_once

from pipelines.notify.receivers.base import NotifyError
from pipelines.notify.receivers.email import EmailConfig, EmailNotifier


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem"), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    return d / "cert.pem", d / "key.pem"


@pytest.fixture
def smtp_server(tls_cert):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Inbox:
        def __init__(self):
            self.messages = []
            self.logins = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                                  session.ssl is not None))
            return "250 OK"

    inbox = Inbox()

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"gpuwatch" \
            and auth_data.password == b"p@ss-w0rd"
        inbox.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*tls_cert)
    port = free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                     authenticator=authenticator, auth_require_tls=True)
    ctl.start()
    inbox.port = port
    yield inbox
    ctl.stop()


def _config(port: int, cert, **kw) -> EmailConfig:
    base = {"to": "oncall@example.com, lead@example.com", "from": "gpuwatch@example.com",
            "smarthost": f"127.0.0.1:{port}", "auth_username": "gpuwatch", "auth_password": "p@ss-w0rd",
            "tls_ca_file": str(cert), "timeout": "5s"}
    return EmailConfig.model_validate({**base, **kw})


def test_mail_goes_over_starttls_with_auth(smtp_server, tls_cert):
    n = make_notification(make_event(node="n1"), make_event(node="n2"))
    send_once(EmailNotifier(_config(smtp_server.port, tls_cert[0]), "mail"), n)
    ((sender, rcpts, content, over_tls),) = smtp_server.messages
    assert over_tls and sender == "gpuwatch@example.com"
    assert rcpts == ["oncall@example.com", "lead@example.com"]
    assert smtp_server.logins and all(ok for _, ok in smtp_server.logins)
    msg = email.message_from_bytes(content)
    assert msg["Subject"] == "[gpuwatch] [FIRING:2] GpuHot"
    body = msg.get_payload(decode=True).decode()
    assert "node=n1" in body and "node=n2" in body


def test_wrong_password_is_not_recoverable_and_not_logged(smtp_server, tls_cert):
    with pytest.raises(NotifyError) as e:
        send_once(EmailNotifier(_config(smtp_server.port, tls_cert[0], auth_password="wrong-pass"), "mail"),
              make_notification(make_event()))
    assert not e.value.recoverable and "credentials" in str(e.value) and "wrong-pass" not in str(e.value)
    assert smtp_server.messages == []


def test_untrusted_certificate_is_refused(smtp_server, tls_cert):
    with pytest.raises(NotifyError) as e:
        send_once(EmailNotifier(_config(smtp_server.port, "", tls_ca_file=""), "mail"), make_notification(make_event()))
    assert "TLS" in str(e.value) and not e.value.recoverable
    assert smtp_server.messages == []


def test_server_down_is_recoverable():
    with pytest.raises(NotifyError) as e:
        send_once(EmailNotifier(_config(free_port(), ""), "mail"), make_notification(make_event()))
    assert e.value.recoverable


def test_auth_needs_both_halves():
    with pytest.raises(ValueError, match="auth_username and auth_password"):
        EmailConfig.model_validate({"to": ["a@b"], "from": "c@d", "smarthost": "h:25", "auth_username": "x"})
