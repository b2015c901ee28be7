"""The keys a client presents (application id, master, client keys, session token) and what they
grant: shared by the REST API (bastion/http) and LiveQuery (bastion/livequery), which read them from
headers or a JSON body and from a ``connect`` message respectively."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from bastion.core.auth import Auth
from bastion.errors import Unauthorized


@dataclass(slots=True)
class Keys:
    app_id: str | None = None
    master_key: str | None = None
    javascript_key: str | None = None
    rest_key: str | None = None
    client_key: str | None = None
    session_token: str | None = None
    installation_id: str | None = None
    client_version: str | None = None


def authenticate(keys: Keys, settings: Any) -> Auth:
    """The Auth of a request from its keys (sessions are resolved afterwards)."""
    if not keys.app_id or keys.app_id != settings.app_id:
        raise Unauthorized()
    auth = Auth(installation_id=keys.installation_id)
    if same_key(keys.master_key, settings.master_key):
        auth.is_master = True
        return auth
    if settings.read_only_master_key and same_key(keys.master_key, settings.read_only_master_key):
        auth.is_master = True
        auth.is_read_only = True
        return auth
    configured = settings.client_keys
    if configured:
        given = {"javascript": keys.javascript_key, "rest": keys.rest_key, "client": keys.client_key}
        if not any(same_key(given[name], value) for name, value in configured.items()):
            raise Unauthorized()
    return auth


def same_key(given: str | None, expected: str | None) -> bool:
    """Whether a key the client sent is the configured one. The comparison takes the same time
    wherever the first difference is, so response times do not reveal a key character by character."""
    if given is None or expected is None:
        return False
    # Bytes: compare_digest takes only ASCII text; surrogatepass encodes any str without failing.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))
