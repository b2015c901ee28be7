"""Mail through an SMTP server (aiosmtplib): plain, STARTTLS or implicit TLS, optional AUTH."""

from __future__ import annotations

import ssl

import aiosmtplib

from bastion.adapters.mail.message import to_email
from bastion.ports.mail import MailError, MailMessage


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool | None = None,
        implicit_tls: bool = False,
        timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        """``starttls``: True requires STARTTLS, False never uses it, None upgrades when the server
        offers it. ``implicit_tls`` is SMTPS (TLS from the first byte, port 465 by default)."""
        if implicit_tls and starttls:
            raise ValueError("choose STARTTLS or implicit TLS, not both")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password go together")
        self.host = host
        self.port = port or (465 if implicit_tls else 587 if starttls else 25)
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = False if implicit_tls else starttls
        self.implicit_tls = implicit_tls
        self.timeout = timeout
        self.tls_context = tls_context

    async def send(self, message: MailMessage) -> None:
        email = to_email(message, self.sender)
        try:
            await aiosmtplib.send(
                email,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.implicit_tls,
                start_tls=self.starttls,
                timeout=self.timeout,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [response.code for response in error.recipients]
            raise MailError(
                f"SMTP server refused the recipient: {error}", codes[0] if codes else None
            ) from error
        except aiosmtplib.SMTPResponseException as error:
            raise MailError(
                f"SMTP server refused the message: {error.code} {error.message}", error.code
            ) from error
        except aiosmtplib.SMTPException as error:  # connect errors, timeouts, TLS not offered…
            raise MailError(f"SMTP delivery failed: {error}") from error
        except OSError as error:  # refused connections, DNS, TLS handshakes (ssl.SSLError)
            raise MailError(f"SMTP delivery failed: {error}") from error

    def __repr__(self) -> str:  # never the password
        return (
            f"SmtpMailer({self.host}:{self.port}, tls={'implicit' if self.implicit_tls else self.starttls})"
        )
