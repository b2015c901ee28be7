"""The table of system classes: the sets derived from it are the ones the pipelines checked before
it existed, and the object service of each class is the one its owner says."""

from __future__ import annotations

from typing import Any

from bastion.core import names, permissions, system_classes
from bastion.core.system_classes import (
    INSTALLATION,
    ROLE,
    SESSION,
    TABLE,
    USER,
    LiveQueryRule,
    Owner,
    cache_drops,
    is_internal,
)
from bastion.domain.object_service import ClassObjects
from bastion.domain.objects import InstallationObjects, Objects, UserObjects
from bastion.domain.session_objects import SessionObjects


def test_the_derived_sets() -> None:
    assert {"_User", "_Installation", "_Role", "_Session", "_Product", "_PushStatus", "_JobStatus", "_JobSchedule",
            "_Audience", "_Idempotency", "_AuthChallenge"} == names.SYSTEM_CLASSES
    assert {"_SCHEMA", "_Hooks", "_GlobalConfig", "_GraphQLConfig", "_JoinTable"} == names.INTERNAL_CLASSES
    assert {"_User", "_Role", "_Session", "_Installation"} == system_classes.CLIENT_READABLE
    assert {"_User", "_Role", "_Session"} == system_classes.CLIENT_QUERYABLE
    assert {"_Installation"} == system_classes.CLIENT_GET_ONLY
    assert {"_Role"} == system_classes.CLIENT_WRITABLE
    assert permissions.DEFAULT_PROTECTED_FIELDS == {"_User": {"*": ["email"]}}


def test_every_entry_is_named_by_its_key_and_internal_ones_are_out_of_reach() -> None:
    for name, entry in TABLE.items():
        assert entry.name == name and name.startswith("_")
        if entry.internal:
            assert not (entry.client_get or entry.client_find or entry.client_write)
            assert entry.live_query is LiveQueryRule.NEVER and entry.owner is Owner.PIPELINES
        assert not entry.client_find or entry.client_get  # a class clients find, they may get
    assert is_internal("_Hooks") and is_internal("_Join:users:_Role") and not is_internal(USER)
    assert not is_internal("GameScore")


def test_caches_and_live_query_rules() -> None:
    assert cache_drops(ROLE) == {"roles"} and cache_drops(SESSION) == {"sessions"}
    assert cache_drops(USER) == frozenset() and cache_drops("GameScore") == frozenset()
    assert TABLE[SESSION].live_query is LiveQueryRule.OWN_SESSIONS
    assert TABLE[USER].live_query is TABLE[ROLE].live_query is LiveQueryRule.CLIENTS
    assert TABLE[INSTALLATION].live_query is LiveQueryRule.MASTER


def test_for_class_dispatches_by_owner() -> None:
    stub: Any = object()
    objects = Objects(stub, stub, stub, stub, stub)
    assert isinstance(objects.for_class(USER), UserObjects)
    assert isinstance(objects.for_class(SESSION), SessionObjects)
    assert isinstance(objects.for_class(INSTALLATION), InstallationObjects)
    for name in (ROLE, "_PushStatus", "GameScore"):
        service = objects.for_class(name)
        assert type(service) is ClassObjects and service.class_name == name
