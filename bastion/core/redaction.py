"""Secrets taken out of what is logged: passwords, session tokens, keys and authData never reach a log
line kept in the database (``domain/script_log.py``) or shown by Parse Dashboard.

Two passes: ``redact_value`` masks the values of secret keys in structured data before it is written
into a message, and ``Redactor.text`` masks what a finished line may still hold (a password in JSON
text, an ``r:`` session token, the configured keys themselves).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "********"

# Keys whose values are secrets wherever they appear (compared case-insensitively). authData holds
# providers' access and ID tokens.
SECRET_KEYS = frozenset(key.lower() for key in (
    "password", "sessionToken", "session_token", "authData", "_hashed_password", "masterKey", "master_key",
    "readOnlyMasterKey", "maintenanceKey", "maintenance_key", "restAPIKey", "javascriptKey", "clientKey", "webhookKey", "_perishable_token",
    "_email_verify_token", "_password_history", "access_token", "accessToken", "id_token", "refresh_token",
    # The same secrets as request headers, and in the JS SDK's text/plain bodies (verbose request lines).
    "x-parse-master-key", "x-parse-maintenance-key", "x-parse-session-token", "x-parse-webhook-key", "_MasterKey", "_SessionToken",
))
_NAMES = "|".join(re.escape(key) for key in sorted(SECRET_KEYS))
# A secret key's value in JSON text or in a Python dict's repr (what request.log.info("%s", params)
# writes): a quoted string, or a flat object or list.
_SECRET_IN_JSON = re.compile(
    r'((["\'])(?:' + _NAMES + r')\2\s*:\s*)'
    r'("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\{[^{}]*\}|\[[^\[\]]*\])', re.IGNORECASE)
_SESSION_TOKEN = re.compile(r"\br:[0-9a-fA-F]{32}\b")


def redact_value(value: Any) -> Any:
    """A copy of ``value`` (REST JSON) with the values of secret keys masked, at any depth."""
    if isinstance(value, dict):
        return {key: MASK if isinstance(key, str) and key.lower() in SECRET_KEYS else redact_value(item)
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact_value(item) for item in value]
    if isinstance(value, str):
        return _SESSION_TOKEN.sub("r:" + MASK, value)
    return value


class Redactor:
    """Masks secrets in finished text: secret keys' values in JSON, session tokens, and the values
    of this deployment's keys wherever they appear."""

    def __init__(self, secrets: list[str | None]) -> None:
        # Longest first, so that a key containing another is masked whole. Very short keys would
        # mask ordinary words; they are not secrets worth the name.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        text = _SECRET_IN_JSON.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}{m.group(2)}", text)
        return _SESSION_TOKEN.sub("r:" + MASK, text)

    def value(self, value: Any) -> Any:
        """Structured data with secret keys masked and every string passed through ``text``."""
        if isinstance(value, dict):
            return {key: MASK if isinstance(key, str) and key.lower() in SECRET_KEYS else self.value(item)
                    for key, item in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value
