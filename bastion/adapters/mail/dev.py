"""The development mailer: each message becomes an .eml file under ``<data_dir>/mail/`` and a log line.

It lets password reset and email verification work with no mail set-up: open the file (or read the
log) to follow the link.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import secrets
import time
from pathlib import Path

from bastion.adapters.mail.message import to_email
from bastion.ports.mail import MailError, MailMessage

log = logging.getLogger("bastion.mail")

_sequence = itertools.count()


class DevMailer:
    def __init__(self, data_dir: Path, *, sender: str = "no-reply@localhost") -> None:
        self.directory = Path(data_dir) / "mail"
        self.sender = sender

    async def send(self, message: MailMessage) -> None:
        email = to_email(message, self.sender)
        data = email.as_bytes()
        try:
            path = await asyncio.to_thread(self._write, data)
        except OSError as error:
            raise MailError(f"could not write the message: {error}") from error
        log.info(
            "mail to=%s subject=%s file=%s",
            json.dumps(message.to, ensure_ascii=False),
            json.dumps(message.subject, ensure_ascii=False),
            path,
            extra={"mail_to": message.to, "mail_subject": message.subject, "mail_file": str(path)},
        )

    def _write(self, data: bytes) -> Path:
        # Messages carry reset and verification tokens: readable by the owner only.
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / _file_name()
        temporary = path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        temporary.replace(path)  # readers never see half a message
        return path


def _file_name() -> str:
    """UTC time to the microsecond, then a sequence number: names sort in the order of sending."""
    now_ns = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    micros = (now_ns // 1000) % 1_000_000
    return f"{stamp}.{micros:06d}Z-{next(_sequence) % 1_000_000:06d}-{secrets.token_hex(3)}.eml"
