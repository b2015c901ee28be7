"""The system classes (``_X``) Bastion keeps, and who may reach each, in one table.

Every rule that depends on which system class a request names reads this table: the constant sets
the pipelines check (``core/names.py``, ``domain/read.py``, ``domain/write.py``,
``core/permissions.py``), the object service that owns a class's writes (``domain/objects.py``),
the caches a write drops here and in other processes (``bastion/invalidation.py``), and LiveQuery's
rule for the class. A class not in the table is an ordinary class (its CLP and ACLs decide).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType

USER = "_User"
ROLE = "_Role"
SESSION = "_Session"
INSTALLATION = "_Installation"
PRODUCT = "_Product"
PUSH_STATUS = "_PushStatus"
JOB_STATUS = "_JobStatus"
JOB_SCHEDULE = "_JobSchedule"
AUDIENCE = "_Audience"
IDEMPOTENCY = "_Idempotency"
# Bastion's own: single-use, expiring sign-in challenges (passkeys, mailed codes, the web flow).
AUTH_CHALLENGE = "_AuthChallenge"
SCHEMA = "_SCHEMA"
HOOKS = "_Hooks"
GLOBAL_CONFIG = "_GlobalConfig"
GRAPHQL_CONFIG = "_GraphQLConfig"
JOIN_TABLE = "_JoinTable"
# A relation's rows: ``_Join:<field>:<class>`` tables, never reachable as classes.
JOIN_PREFIX = "_Join:"
# Tables Bastion keeps beside the classes: no class (their names are no valid class names).
PUSH_QUEUE = "_PushQueue"
SCRIPT_LOG = "_ScriptLog"

# The caches a write may make stale; also the kinds of bastion/invalidation.py's messages.
ROLES_CACHE = "roles"  # each user's role names (domain/roles.py)
SESSIONS_CACHE = "sessions"  # resolved session tokens (domain/sessions.py)


class Owner(Enum):
    """The object service a class's creates, updates and deletes go through (domain/objects.py)."""

    PIPELINES = "pipelines"  # the generic Reader and Writer
    USERS = "users"  # sign-up, and the rules of user writes (domain/users.py)
    SESSIONS = "sessions"  # sessions a user opens, own sessions only (domain/session_objects.py)
    INSTALLATIONS = "installations"  # Parse's installation matching (domain/installations.py)


class LiveQueryRule(Enum):
    """Who may subscribe to a class's changes."""

    NEVER = "never"  # nobody: the class is not readable
    MASTER = "master"  # the master key only
    CLIENTS = "clients"  # as any class: CLP and ACLs decide
    OWN_SESSIONS = "own sessions"  # a client with a session watches its own sessions only


@dataclass(frozen=True, slots=True)
class SystemClass:
    name: str
    # Clients (no master key) may get an object by id; their ACLs and the CLP apply.
    client_get: bool = False
    # Clients may query the class (find, count, subqueries, includes).
    client_find: bool = False
    # Clients may write it through the generic Writer (the owners of _User, _Session and
    # _Installation write theirs as trusted services, after their own rules).
    client_write: bool = False
    # Never reachable through /classes, whatever the keys.
    internal: bool = False
    owner: Owner = Owner.PIPELINES
    # The caches (ROLES_CACHE, SESSIONS_CACHE) a write to the class drops.
    drops: frozenset[str] = frozenset()
    live_query: LiveQueryRule = LiveQueryRule.MASTER


def _internal(name: str) -> SystemClass:
    return SystemClass(name, internal=True, live_query=LiveQueryRule.NEVER)


TABLE: Mapping[str, SystemClass] = MappingProxyType({entry.name: entry for entry in (
    SystemClass(USER, client_get=True, client_find=True, owner=Owner.USERS, live_query=LiveQueryRule.CLIENTS),
    SystemClass(ROLE, client_get=True, client_find=True, client_write=True, drops=frozenset({ROLES_CACHE}),
                live_query=LiveQueryRule.CLIENTS),
    SystemClass(SESSION, client_get=True, client_find=True, owner=Owner.SESSIONS, drops=frozenset({SESSIONS_CACHE}),
                live_query=LiveQueryRule.OWN_SESSIONS),
    # Clients may get an installation, never query them (Parse Server's enforceRoleSecurity).
    SystemClass(INSTALLATION, client_get=True, owner=Owner.INSTALLATIONS),
    SystemClass(PRODUCT),
    SystemClass(PUSH_STATUS),
    SystemClass(JOB_STATUS),
    SystemClass(JOB_SCHEDULE),
    SystemClass(AUDIENCE),
    SystemClass(IDEMPOTENCY),
    SystemClass(AUTH_CHALLENGE),
    _internal(SCHEMA),
    _internal(HOOKS),
    _internal(GLOBAL_CONFIG),
    _internal(GRAPHQL_CONFIG),
    _internal(JOIN_TABLE),
)})

# The sets the pipelines check, derived from the table.
SYSTEM_CLASSES = frozenset(name for name, entry in TABLE.items() if not entry.internal)
INTERNAL_CLASSES = frozenset(name for name, entry in TABLE.items() if entry.internal)
CLIENT_READABLE = frozenset(name for name, entry in TABLE.items() if entry.client_get)
CLIENT_QUERYABLE = frozenset(name for name, entry in TABLE.items() if entry.client_find)
CLIENT_GET_ONLY = CLIENT_READABLE - CLIENT_QUERYABLE
CLIENT_WRITABLE = frozenset(name for name, entry in TABLE.items() if entry.client_write)
OWNED = MappingProxyType({name: entry.owner for name, entry in TABLE.items() if entry.owner is not Owner.PIPELINES})
_DROPS = MappingProxyType({name: entry.drops for name, entry in TABLE.items() if entry.drops})


def is_internal(class_name: str) -> bool:
    """Whether no request may name the class (an internal class or a relation's join table)."""
    return class_name in INTERNAL_CLASSES or class_name.startswith(JOIN_PREFIX)


def cache_drops(class_name: str) -> frozenset[str]:
    """The caches a write to ``class_name`` makes stale (none for most classes)."""
    return _DROPS.get(class_name, frozenset())


def live_query_rule(class_name: str) -> LiveQueryRule:
    """Who may subscribe to the class's changes (an app's own classes: as any query, CLP and ACLs)."""
    entry = TABLE.get(class_name)
    if entry is not None:
        return entry.live_query
    return LiveQueryRule.NEVER if class_name.startswith(JOIN_PREFIX) else LiveQueryRule.CLIENTS
