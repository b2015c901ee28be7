"""A MailMessage as an RFC 5322 email."""

from __future__ import annotations

from email.header import Header
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from bastion.ports.mail import MailError, MailMessage


def to_email(message: MailMessage, default_sender: str) -> EmailMessage:
    """An RFC 5322 message (UTF-8, text with an optional HTML alternative).

    Header values with line breaks are refused (header injection) as ``MailError``.
    """
    sender = message.from_addr or default_sender
    email = EmailMessage()
    try:
        email["From"] = sender
        email["To"] = message.to
        _set_subject(email, message.subject)
    except (ValueError, IndexError) as error:  # the email package's own header checks
        raise MailError(f"invalid mail header: {error}") from None
    email["Date"] = formatdate(usegmt=True)
    # An explicit domain: make_msgid would otherwise ask DNS for this host's name.
    email["Message-ID"] = make_msgid(domain=_domain_of(sender))
    # Quoted-printable keeps non-ASCII bodies 7-bit clean for relays without 8BITMIME.
    email.set_content(message.text, cte=_transfer_encoding(message.text))
    if message.html is not None:
        email.add_alternative(message.html, subtype="html", cte=_transfer_encoding(message.html))
    return email


def _set_subject(email: EmailMessage, subject: str) -> None:
    if subject.isascii():
        email["Subject"] = subject
        return
    if "\r" in subject or "\n" in subject:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    # Python 3.11's header folding drops the space between two encoded words ("— 日本" arrives as
    # "—日本"); the legacy Header encoder keeps it inside the encoded text, and set_raw keeps that as is.
    email.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode())


def _transfer_encoding(body: str) -> str | None:
    return None if body.isascii() else "quoted-printable"


def _domain_of(address: str) -> str:
    domain = address.rpartition("@")[2].strip(" >")
    return domain or "localhost"
