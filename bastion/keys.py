"""The keys a client presents (application id, master, maintenance, client keys, session token) and
what they grant: shared by the REST API (bastion/http) and LiveQuery (bastion/livequery), which read
them from headers or a JSON body and from a ``connect`` message respectively."""

from __future__ import annotations

import hmac
import ipaddress
import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from bastion.core.auth import Auth
from bastion.errors import Unauthorized

log = logging.getLogger("bastion")


@dataclass(slots=True)
class Keys:
    app_id: str | None = None
    master_key: str | None = None
    maintenance_key: str | None = None
    javascript_key: str | None = None
    rest_key: str | None = None
    client_key: str | None = None
    session_token: str | None = None
    installation_id: str | None = None
    client_version: str | None = None


def authenticate(keys: Keys, settings: Any, client_ip: str | None) -> Auth:
    """The Auth of a request from its keys (sessions are resolved afterwards). ``client_ip`` is the
    client's address (after --trust-proxy): each secret key is only taken from its allowed addresses."""
    if not keys.app_id or keys.app_id != settings.app_id:
        raise Unauthorized()
    auth = Auth(installation_id=keys.installation_id)
    # As Parse Server 9: the maintenance key first, then the master key, then the read-only one; a
    # right key from an address it is not allowed from is refused (403), not taken as no key.
    if settings.maintenance_key and same_key(keys.maintenance_key, settings.maintenance_key):
        _check_address("maintenance key", "maintenance-key-ips", settings.maintenance_key_ips, client_ip)
        # Parse Server's isMaintenance: past ACLs and class-level permissions as the master key, but
        # not on master-only routes (http/routes/common.py's require_master refuses it).
        auth.is_master = auth.is_maintenance = True
        return auth
    if same_key(keys.master_key, settings.master_key):
        _check_address("master key", "master-key-ips", settings.master_key_ips, client_ip)
        auth.is_master = True
        return auth
    if settings.read_only_master_key and same_key(keys.master_key, settings.read_only_master_key):
        _check_address("read-only master key", "read-only-master-key-ips", settings.read_only_master_key_ips,
                       client_ip)
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


# --- the addresses a key is taken from (Parse Server's masterKeyIps and the like) --------------------

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_refused_logged: set[tuple[str, str]] = set()  # (key, address) already logged, so a flood logs once
_MAX_LOGGED = 10_000


@dataclass(frozen=True, slots=True)
class AddressList:
    """Addresses and CIDR networks, as Parse Server reads them: IPv4 and IPv6 are never compared with
    each other; 0.0.0.0 or 0.0.0.0/0 allows every IPv4 address, ::, ::0 or ::/0 every IPv6 one."""

    networks: tuple[_Network, ...]
    all_v4: bool = False
    all_v6: bool = False

    def allows(self, address: str | None) -> bool:
        if not address:
            return False  # no peer address (not a TCP client): never a secret key's
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 client
        if self.all_v4 if ip.version == 4 else self.all_v6:
            return True
        return any(ip in network for network in self.networks if network.version == ip.version)


@lru_cache(maxsize=32)
def parse_addresses(text: str) -> AddressList:
    """``text``: comma-separated addresses or networks. ValueError names the first bad one."""
    networks: list[_Network] = []
    all_v4 = all_v6 = False
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if item in ("0.0.0.0", "0.0.0.0/0"):
            all_v4 = True
        elif item in ("::", "::0", "::/0"):
            all_v6 = True
        else:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or a CIDR network") from None
    if not networks and not all_v4 and not all_v6:
        raise ValueError("no address given (0.0.0.0/0,::0 allows every address)")
    return AddressList(tuple(networks), all_v4, all_v6)


@lru_cache(maxsize=4096)
def _allowed(allowed: str, address: str | None) -> bool:
    return parse_addresses(allowed).allows(address)


def _check_address(key: str, option: str, allowed: str, address: str | None) -> None:
    if _allowed(allowed, address):
        return
    seen = (key, address or "")
    if seen not in _refused_logged and len(_refused_logged) < _MAX_LOGGED:
        _refused_logged.add(seen)
        log.error("Request using the %s refused: the client address %r is not in --%s (logged once per address)",
                  key, address, option)
    raise Unauthorized()
