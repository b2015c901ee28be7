"""PostgreSQL errors a request can cause, as ParseErrors; the names PostgreSQL would truncate."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import asyncpg

from bastion.adapters.storage.postgres.dialect import MAX_IDENTIFIER
from bastion.errors import Code, ParseError
from bastion.ports.storage import DuplicateValue


@contextmanager
def parse_errors(missing: Callable[[], Exception] | None = None) -> Iterator[None]:
    """PostgreSQL errors a request can cause, as ParseErrors instead of 500s."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateValue(str(exc)) from None
    except asyncpg.UndefinedTableError:
        raise (missing() if missing else ParseError(Code.INVALID_CLASS_NAME, "Class does not exist.")) from None
    except asyncpg.UndefinedColumnError:  # a schema that names a field its table lacks
        raise ParseError(Code.INVALID_KEY_NAME, "A field of this class does not exist.") from None
    except asyncpg.InvalidRegularExpressionError:
        raise ParseError(Code.INVALID_QUERY, "Invalid regular expression") from None
    except (asyncpg.CharacterNotInRepertoireError, asyncpg.UntranslatableCharacterError):
        raise ParseError(Code.INVALID_JSON, "A value holds a character PostgreSQL cannot store.") from None
    except asyncpg.NumericValueOutOfRangeError:
        raise ParseError(Code.INVALID_JSON, "Number is out of range.") from None
    except asyncpg.StringDataRightTruncationError:
        raise ParseError(Code.INVALID_JSON, "Value is too long.") from None
    except asyncpg.StatementTooComplexError:
        raise ParseError(Code.INVALID_QUERY, "Query is too complex.") from None
    except asyncpg.QueryCanceledError:  # statement_timeout, when the deployment sets one
        raise ParseError(Code.TIMEOUT, "Query took too long.") from None
    except asyncpg.ProgramLimitExceededError:  # e.g. a value too large for a btree index
        raise ParseError(Code.OBJECT_TOO_LARGE, "A value is too large for this database.") from None
    except asyncpg.DataError:  # a value the driver could not encode, or PostgreSQL could not read
        raise ParseError(Code.INCORRECT_TYPE, "A value does not fit its field's type.") from None


class MissingTable(Exception):
    """The class table does not exist: the caller answers as for an empty class."""


def missing_table() -> Exception:
    return MissingTable()


def check_identifier(name: str, code: int) -> None:
    if len(name.encode()) > MAX_IDENTIFIER:
        raise ParseError(code, f"{name[:80]} is too long for PostgreSQL (63 bytes at most).")
