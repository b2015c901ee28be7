"""A local SMTP server (aiosmtpd, loopback only) that keeps every mail with its envelope, for the
``email`` provider's tests: the codes and links are read out of the mails a user would get."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.conftest import free_port

CODE = re.compile(r"\b(\d{4,12})\b")
TOKEN = re.compile(r"[?&]token=([A-Za-z0-9_\-]+)")


@dataclass(frozen=True)
class Mail:
    recipients: tuple[str, ...]  # the envelope's RCPT TO
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content())

    @property
    def code(self) -> str:
        found = CODE.search(self.text)
        assert found is not None, self.text
        return found.group(1)

    @property
    def token(self) -> str | None:
        found = TOKEN.search(self.text)
        return found.group(1) if found else None


@dataclass
class Inbox:
    port: int = 0
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.mails.append(Mail(tuple(envelope.rcpt_tos), parsed))
        return "250 Message accepted"

    def to(self, address: str) -> list[Mail]:
        """Mails whose envelope or header names ``address``."""
        with self.lock:
            return [m for m in self.mails if address in m.recipients or m.message["To"] == address]

    def wait_for(self, address: str, count: int = 1, timeout: float = 15.0) -> list[Mail]:
        deadline = time.monotonic() + timeout
        found: list[Mail] = []
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s) to {address}, got {len(found)}")


@contextmanager
def smtp_inbox() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
