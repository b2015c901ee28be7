"""Parse's rules for class and field names, checked before any name reaches SQL."""

from __future__ import annotations

import re

# SYSTEM_CLASSES (valid class names) and INTERNAL_CLASSES (never reachable) come from the table.
from bastion.core.system_classes import INTERNAL_CLASSES as INTERNAL_CLASSES
from bastion.core.system_classes import SYSTEM_CLASSES as SYSTEM_CLASSES
from bastion.errors import Code, ParseError

CLASS_AND_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*\Z")
JOIN_CLASS = re.compile(r"^_Join:[A-Za-z0-9_]+:[A-Za-z0-9_]+\Z")

# Keys that poison JavaScript objects in Parse clients and servers; refused anywhere in a body.
DENYLISTED_KEYS = frozenset({"__proto__", "constructor", "prototype"})

# Field names the storage keeps for itself.
RESERVED_FIELDS = frozenset({"_rperm", "_wperm", "_hashed_password", "_email_verify_token"})
INVALID_COLUMNS = frozenset({"length"})
MAX_NAME_LENGTH = 128


# Table names the databases keep for themselves: a class named so would reach or shadow them.
RESERVED_TABLE_PREFIXES = ("sqlite_", "pg_")


def class_name_is_valid(name: str) -> bool:
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        return False
    if name.lower().startswith(RESERVED_TABLE_PREFIXES):
        return False
    return name in SYSTEM_CLASSES or bool(JOIN_CLASS.match(name)) or field_name_is_valid(name)


def field_name_is_valid(name: str, class_name: str | None = None) -> bool:
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        return False
    if class_name is not None and name == "className":
        return False
    return bool(CLASS_AND_FIELD.match(name)) and name not in INVALID_COLUMNS


def invalid_class_message(name: str) -> str:
    return (
        f"Invalid classname: {name}, classnames can only have alphanumeric characters and _, "
        "and must start with an alpha character "
    )


def check_class_name(name: str) -> str:
    if not class_name_is_valid(name):
        raise ParseError(Code.INVALID_CLASS_NAME, invalid_class_message(str(name)[:200]))
    return name


def check_field_name(name: str, class_name: str | None = None) -> str:
    if not field_name_is_valid(name, class_name):
        raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {str(name)[:200]}.")
    return name


def check_no_denylisted_keys(value: object, depth: int = 0, max_depth: int = 64) -> None:
    """Refuse ``__proto__``-style keys at any depth, and absurdly deep nesting."""
    if depth > max_depth:
        raise ParseError(Code.INVALID_JSON, "Object is nested too deeply.")
    if isinstance(value, dict):
        for key, item in value.items():
            denied = key if key in DENYLISTED_KEYS else _denied_part(key)
            if denied:
                raise ParseError(Code.INVALID_KEY_NAME, 'Prohibited keyword in request data: {"key":"' + denied + '"}.')
            if isinstance(item, (dict, list)):
                check_no_denylisted_keys(item, depth + 1, max_depth)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                check_no_denylisted_keys(item, depth + 1, max_depth)


def _denied_part(key: str) -> str | None:
    """The denylisted segment of a dotted key (``obj.__proto__.x``), if any."""
    if "." not in key:
        return None
    return next((part for part in key.split(".") if part in DENYLISTED_KEYS), None)

