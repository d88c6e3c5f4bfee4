"""Email receiver: one message per notification over SMTP, STARTTLS then AUTH.

Runs the standard library's smtplib in a thread. Connection failures, timeouts
and 4xx SMTP replies are recoverable; authentication failures, 5xx replies and
a server without STARTTLS (when ``require_tls``) are not.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pipelines.notify.payload import body_lines, title
from pipelines.notify.receivers.base import Notification, Notifier, NotifyError, redact_text
from pipelines.notify.receivers.email.config import EmailConfig


class EmailNotifier(Notifier):
    kind = "email"
    config_model = EmailConfig
    config: EmailConfig

    def secrets(self) -> list[str]:
        return [self.config.auth_password.get_secret_value()] if self.config.auth_password else []

    def render(self, n: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = self.config.subject_prefix + title(n)
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = formatdate(localtime=False)
        msg["Message-Id"] = make_msgid(domain="gpuwatch")
        msg["X-Gpuwatch-Group-Key"] = n.group_key
        msg.set_content("\n".join([title(n), "", *body_lines(n)]) + "\n")
        return msg

    def _tls_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.config.tls_ca_file or None)
        if self.config.tls_insecure_skip_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    def _send(self, msg: EmailMessage) -> None:
        c = self.config
        where = f"SMTP {c.smarthost}"
        try:
            with smtplib.SMTP(c.host, c.port, local_hostname=c.hello, timeout=c.timeout) as smtp:
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                elif c.require_tls:
                    raise NotifyError(f"email: {where} does not offer STARTTLS and require_tls is set",
                                      recoverable=False)
                if c.auth_username:
                    self._login(smtp)
                smtp.send_message(msg)
        except NotifyError:
            raise
        except smtplib.SMTPAuthenticationError as e:
            raise NotifyError(f"email: {where} refused the credentials ({e.smtp_code})", recoverable=False) from None
        except smtplib.SMTPResponseException as e:
            text = redact_text(e.smtp_error.decode(errors="replace")[:200], self.secrets())
            raise NotifyError(f"email: {where} answered {e.smtp_code}: {text}",
                              recoverable=400 <= e.smtp_code < 500) from None
        except smtplib.SMTPRecipientsRefused as e:
            raise NotifyError(f"email: {where} refused all recipients ({len(e.recipients)})",
                              recoverable=False) from None
        except ssl.SSLError as e:
            raise NotifyError(f"email: TLS with {where} failed: {e.reason}", recoverable=False) from None
        except (OSError, smtplib.SMTPException, socket.timeout) as e:
            raise NotifyError(f"email: cannot talk to {where}: {type(e).__name__}: "
                              f"{redact_text(str(e), self.secrets())}", recoverable=True) from None

    def _login(self, smtp: smtplib.SMTP) -> None:
        """AUTH with one mechanism the server offers (PLAIN, LOGIN, CRAM-MD5, in that order).

        smtplib's ``login()`` falls back to the next mechanism after a refusal,
        which some servers answer with silence; one clear refusal is better.
        """
        smtp.user = self.config.auth_username
        smtp.password = self.config.auth_password.get_secret_value()  # type: ignore[union-attr]
        offered = smtp.esmtp_features.get("auth", "").upper().split()
        mech = next((m for m in ("PLAIN", "LOGIN", "CRAM-MD5") if m in offered), None)
        if mech is None:
            raise NotifyError(f"email: SMTP {self.config.smarthost} offers no AUTH mechanism gpuwatch supports "
                              f"(offered: {' '.join(offered) or 'none'})", recoverable=False)
        smtp.auth(mech, getattr(smtp, "auth_" + mech.lower().replace("-", "_")), initial_response_ok=True)

    async def notify(self, n: Notification) -> None:
        await asyncio.to_thread(self._send, self.render(n))
