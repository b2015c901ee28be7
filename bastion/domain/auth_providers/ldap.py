"""LDAP sign-in, as Parse Server 9's ``ldap`` adapter: ``authData.ldap = {id, password}``.

The server binds to the directory as ``uid=<id>,<suffix>`` (or the ``dn`` template with ``{{id}}``)
with the password; with ``groupCn`` and ``groupFilter`` it then searches ``suffix`` with the filter
(``{{id}}`` replaced) for an entry whose ``cn`` is ``groupCn``. The id is escaped for DNs (RFC 4514)
and filters (RFC 4515), so it cannot change the DN bound to or widen the search.

The password is checked and never stored: what is saved is the entry without it (Parse Server
deletes it from authData after the bind), and answers never show one.

ldap3 is synchronous: each check runs in a worker thread, bounded by ``connectTimeout`` and
``timeout`` (milliseconds, as ldapjs names them; ldap3 takes the read timeout in whole seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
from collections.abc import Mapping
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from bastion.domain.auth_providers.adapter import AuthAdapter, AuthRequest, AuthResult
from bastion.errors import Code, ParseError

log = logging.getLogger("bastion.auth")

WRONG_CREDENTIALS = "LDAP: Wrong username or password"
_OPTIONS = {"url", "suffix", "dn", "groupCn", "groupFilter", "tlsOptions", "connectTimeout", "timeout",
            "enabled", "module", "appIds"}
_TLS_OPTIONS = {"rejectUnauthorized", "ca", "servername"}
MAX_ID_LENGTH = 256
MAX_PASSWORD_LENGTH = 1024
INVALID_CREDENTIALS = 49


def escape_dn(value: str) -> str:
    """An attribute value for a DN (RFC 4514 2.4): specials escaped, leading '#' or space, trailing space."""
    out = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in '\\,=+<>#;"':
            out.append("\\" + char)
        elif char == "\x00":
            out.append("\\00")
        elif char == " " and index in (0, last):
            out.append("\\ ")
        else:
            out.append(char)
    return "".join(out)


def escape_filter(value: str) -> str:
    """An assertion value for a search filter (RFC 4515 3): ``\\ * ( )`` and NUL as ``\\XX``."""
    return "".join(f"\\{ord(c):02x}" if c in "\\*()\x00" else c for c in value)


class _Failed(Exception):
    """The directory could not be reached or answered an error; ``code`` as ldapjs would name it."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class LdapAdapter(AuthAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.url = ""
        self.suffix = ""
        self.dn_template: str | None = None
        self.group_cn: str | None = None
        self.group_filter: str | None = None
        self.tls: ldap3.Tls | None = None
        self.connect_timeout = 5.0
        self.timeout = 10.0

    def validate_options(self, options: Mapping[str, Any]) -> None:
        self.refuse_unknown_options(options, _OPTIONS)
        url, suffix = options.get("url"), options.get("suffix")
        if not isinstance(url, str) or not url.startswith(("ldap://", "ldaps://")):
            raise ValueError("url must start with ldap:// or ldaps://")
        if not isinstance(suffix, str):
            raise ValueError("suffix is required (the DN under which users are)")
        self.url, self.suffix = url, suffix
        dn = options.get("dn")
        if dn is not None and (not isinstance(dn, str) or "{{id}}" not in dn):
            raise ValueError("dn must be a DN template with {{id}}")
        self.dn_template = dn
        group_cn, group_filter = options.get("groupCn"), options.get("groupFilter")
        for key, value in (("groupCn", group_cn), ("groupFilter", group_filter)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{key} must be a string")
        if (group_cn is None) != (group_filter is None):
            # Parse Server silently skips the group check when one is missing: refuse that set-up.
            raise ValueError("groupCn and groupFilter go together")
        self.group_cn, self.group_filter = group_cn, group_filter
        for key in ("connectTimeout", "timeout"):
            value = options.get(key)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 600_000:
                    raise ValueError(f"{key} must be a number of milliseconds")
                setattr(self, "connect_timeout" if key == "connectTimeout" else "timeout", value / 1000)
        self.tls = self._tls(options.get("tlsOptions"))

    def _tls(self, options: Any) -> ldap3.Tls | None:
        if options is None:
            return ldap3.Tls(validate=ssl.CERT_REQUIRED) if self.url.startswith("ldaps://") else None
        if not isinstance(options, Mapping):
            raise ValueError("tlsOptions must be an object")
        unknown = set(options) - _TLS_OPTIONS
        if unknown:
            raise ValueError(f"tlsOptions: unsupported key(s): {', '.join(sorted(unknown))}")
        reject = options.get("rejectUnauthorized", True)
        if not isinstance(reject, bool):
            raise ValueError("tlsOptions.rejectUnauthorized must be true or false")
        if not reject:
            log.warning("auth provider %s: tlsOptions.rejectUnauthorized is false: the LDAP server's "
                        "certificate is not checked", self.name)
        ca = options.get("ca")
        if ca is not None:
            ca = "\n".join(ca) if isinstance(ca, list) and all(isinstance(c, str) for c in ca) else ca
            if not isinstance(ca, str):
                raise ValueError("tlsOptions.ca must be PEM text or a list of PEM texts")
        servername = options.get("servername")
        if servername is not None and not isinstance(servername, str):
            raise ValueError("tlsOptions.servername must be a host name")
        return ldap3.Tls(validate=ssl.CERT_REQUIRED if reject else ssl.CERT_NONE, ca_certs_data=ca,
                         sni=servername, valid_names=[servername] if servername else None)

    # --- the check ----------------------------------------------------------------------------------

    async def validate_auth_data(self, auth_data: dict[str, Any], request: AuthRequest) -> AuthResult | None:
        user_id, password = auth_data.get("id"), auth_data.get("password")
        # An empty password would be an unauthenticated bind (RFC 4513 5.1.2), which some
        # directories accept as success: it never proves the user.
        if (not isinstance(user_id, str) or not user_id or len(user_id) > MAX_ID_LENGTH
                or not isinstance(password, str) or not password or len(password) > MAX_PASSWORD_LENGTH):
            raise ParseError(Code.OBJECT_NOT_FOUND, WRONG_CREDENTIALS)
        escaped = escape_dn(user_id)
        if self.dn_template is not None:
            user_dn = self.dn_template.replace("{{id}}", escaped)
        else:
            user_dn = f"uid={escaped},{self.suffix}"
        deadline = self.connect_timeout + 2 * self.timeout + 5
        try:
            outcome = await asyncio.wait_for(asyncio.to_thread(self._check, user_dn, password, user_id), deadline)
        except TimeoutError:
            outcome = "ETIMEDOUT"
        if outcome == "ok":
            return AuthResult(save={k: v for k, v in auth_data.items() if k != "password"})
        log.info("ldap: %s refused (%s)", self.name, outcome)
        if outcome == "credentials":
            raise ParseError(Code.OBJECT_NOT_FOUND, WRONG_CREDENTIALS)
        if outcome == "certificate":
            raise ParseError(Code.OBJECT_NOT_FOUND, "LDAPS: Certificate mismatch")
        if outcome == "not in group":
            raise ParseError(Code.INTERNAL_SERVER_ERROR, "LDAP: User not in group")
        if outcome == "search failed":
            raise ParseError(Code.INTERNAL_SERVER_ERROR, "LDAP group search failed")
        # Parse Server's message, spelling included.
        raise ParseError(Code.OBJECT_NOT_FOUND, f"LDAP: Somthing went wrong ({outcome})")

    def _check(self, user_dn: str, password: str, user_id: str) -> str:
        """In a worker thread: "ok", "credentials", "certificate", "not in group", "search failed",
        or an error code for anything else."""
        server = ldap3.Server(self.url, get_info=ldap3.NONE, tls=self.tls, connect_timeout=self.connect_timeout)
        connection = ldap3.Connection(server, user=user_dn, password=password, auto_bind=ldap3.AUTO_BIND_NONE,
                                      read_only=True, receive_timeout=math.ceil(self.timeout), auto_escape=False,
                                      auto_referrals=False, raise_exceptions=False)
        try:
            if not connection.bind():
                code = connection.result.get("result") if isinstance(connection.result, dict) else None
                return "credentials" if code == INVALID_CREDENTIALS else f"{code}"
            if self.group_cn is None or self.group_filter is None:
                return "ok"
            return self._in_group(connection, user_id)
        except ldap_errors.LDAPException as error:
            return _socket_code(error)
        finally:
            with contextlib.suppress(ldap_errors.LDAPException):
                connection.unbind()

    def _in_group(self, connection: ldap3.Connection, user_id: str) -> str:
        assert self.group_filter is not None and self.group_cn is not None
        query = self.group_filter.replace("{{id}}", escape_filter(user_id))
        try:
            found = connection.search(self.suffix, query, search_scope=ldap3.SUBTREE, attributes=["cn"],
                                      size_limit=100)
        except ldap_errors.LDAPException as error:
            log.warning("ldap: group search failed: %r", error)
            return "search failed"
        result = connection.result.get("result") if isinstance(connection.result, dict) else None
        if not found and result not in (0, None):
            return "search failed"
        for entry in connection.response or []:
            names = (entry.get("attributes") or {}).get("cn") if entry.get("type") == "searchResEntry" else None
            values = names if isinstance(names, list) else [names]
            if self.group_cn in values:
                return "ok"
        return "not in group"

    def after_find(self, auth_data: dict[str, Any], request: AuthRequest) -> dict[str, Any] | None:
        # Entries stored before the password was dropped must not show it.
        if "password" in auth_data:
            return {k: v for k, v in auth_data.items() if k != "password"}
        return None


def _socket_code(error: Exception) -> str:
    """What ldapjs would call the failure (ECONNREFUSED, ETIMEDOUT…), or the certificate's."""
    text = repr(error).lower()
    if "certificate_verify_failed" in text or "certificate verify failed" in text:
        return "certificate"
    if "refused" in text:
        return "ECONNREFUSED"
    if "timed out" in text or "timeout" in text:
        return "ETIMEDOUT"
    return type(error).__name__
