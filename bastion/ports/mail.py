"""The mail contract: what a message is, what a mailer does, and the one error it raises."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class MailError(Exception):
    """A message could not be handed over (server down, refused, bad address, disk full…).

    ``smtp_code`` is the server's reply code when there was one.
    """

    def __init__(self, message: str, smtp_code: int | None = None) -> None:
        super().__init__(message)
        self.smtp_code = smtp_code


@dataclass(frozen=True, slots=True)
class MailMessage:
    to: str
    subject: str
    text: str
    html: str | None = None
    from_addr: str | None = None  # overrides the mailer's sender


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> None:
        """Deliver ``message`` or raise ``MailError``."""
        ...
