"""Names and errors shared by every authData provider, as Parse Server 9 gives them."""

from __future__ import annotations

import re
from typing import Any

from bastion.errors import Code, ParseError

UNSUPPORTED_SERVICE = 252  # Parse.Error.UNSUPPORTED_SERVICE

# authData.<provider> is stored in a `_auth_data_<provider>` column: the name must be a safe identifier.
PROVIDER_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


def unsupported() -> ParseError:
    return ParseError(UNSUPPORTED_SERVICE, "This authentication method is unsupported.")


def string_id(provider: str, auth_data: dict[str, Any]) -> str:
    """``authData.<provider>.id`` as a string; Parse Server 9 answers 162 for any other type."""
    value = auth_data.get("id")
    if not isinstance(value, str):
        raise ParseError(Code.INVALID_VALUE, f"Invalid authData id for provider '{provider}'.")
    return value
