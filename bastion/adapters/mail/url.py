"""``mailer_from_url``: one setting chooses the mailer.

``smtp://user:pass@host:587?starttls=1&from=app@example.com`` (STARTTLS; ``starttls=0`` never,
absent: when offered), ``smtps://…`` (implicit TLS), and nothing for the development mailer.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from bastion.adapters.mail.dev import DevMailer
from bastion.adapters.mail.smtp import SmtpMailer
from bastion.ports.mail import Mailer

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_OPTIONS = {"starttls", "from", "timeout"}


def mailer_from_url(url: str | None, data_dir: Path) -> Mailer:
    """Raises ValueError for a URL it cannot use (a setting mistake, found at start-up)."""
    if not url:
        return DevMailer(data_dir)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"mail URL scheme must be smtp or smtps, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("mail URL needs a host")
    options: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        if key not in _OPTIONS:
            raise ValueError(f"unknown mail URL option {key!r} (known: {', '.join(sorted(_OPTIONS))})")
        options[key] = value
    username = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    if username is not None and password is None:
        raise ValueError("mail URL has a user name but no password")
    sender = options.get("from") or (username if username and "@" in username else None)
    if not sender:
        raise ValueError("mail URL needs from=<address> (the sender of every message)")
    starttls = _flag(options["starttls"]) if "starttls" in options else None
    implicit_tls = scheme == "smtps"
    if implicit_tls and starttls:
        raise ValueError("smtps:// is implicit TLS; starttls=1 does not apply")
    timeout = float(options.get("timeout", "10"))
    if not 0 < timeout <= 600:
        raise ValueError("mail URL timeout must be between 0 and 600 seconds")
    return SmtpMailer(
        parts.hostname,
        parts.port,  # ValueError for a port that is not a number in range
        sender=sender,
        username=username,
        password=password,
        starttls=starttls,
        implicit_tls=implicit_tls,
        timeout=timeout,
    )


def _flag(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"starttls must be 1 or 0, not {value!r}")
