"""Parse's error codes and the one exception type that carries them to the wire."""

from __future__ import annotations


class Code:
    """Parse error codes (a subset of Parse.Error, named as in the SDKs)."""

    OTHER_CAUSE = -1
    INTERNAL_SERVER_ERROR = 1
    CONNECTION_FAILED = 100
    OBJECT_NOT_FOUND = 101
    INVALID_QUERY = 102
    INVALID_CLASS_NAME = 103
    MISSING_OBJECT_ID = 104
    INVALID_KEY_NAME = 105
    INVALID_POINTER = 106
    INVALID_JSON = 107
    COMMAND_UNAVAILABLE = 108
    NOT_INITIALIZED = 109
    INCORRECT_TYPE = 111
    INVALID_CHANNEL_NAME = 112
    PUSH_MISCONFIGURED = 115
    OBJECT_TOO_LARGE = 116
    OPERATION_FORBIDDEN = 119
    CACHE_MISS = 120
    INVALID_NESTED_KEY = 121
    INVALID_FILE_NAME = 122
    INVALID_ACL = 123
    TIMEOUT = 124
    INVALID_EMAIL_ADDRESS = 125
    FILE_SAVE_ERROR = 130
    DUPLICATE_VALUE = 137
    INVALID_ROLE_NAME = 139
    EXCEEDED_QUOTA = 140
    SCRIPT_FAILED = 141
    VALIDATION_ERROR = 142
    INVALID_IMAGE_DATA = 143
    FILE_DELETE_ERROR = 153
    REQUEST_LIMIT_EXCEEDED = 155
    DUPLICATE_REQUEST = 159
    INVALID_EVENT_NAME = 160
    INVALID_VALUE = 162
    USERNAME_MISSING = 200
    PASSWORD_MISSING = 201
    USERNAME_TAKEN = 202
    EMAIL_TAKEN = 203
    EMAIL_MISSING = 204
    EMAIL_NOT_FOUND = 205
    SESSION_MISSING = 206
    MUST_CREATE_USER_THROUGH_SIGNUP = 207
    ACCOUNT_ALREADY_LINKED = 208
    INVALID_SESSION_TOKEN = 209


# Parse Server answers most errors with 400; these are the exceptions.
_STATUS_BY_CODE = {
    Code.OBJECT_NOT_FOUND: 404,
    Code.INTERNAL_SERVER_ERROR: 500,
}


class ParseError(Exception):
    """An error that reaches the client as ``{"code": N, "error": "..."}``."""

    def __init__(self, code: int, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else _STATUS_BY_CODE.get(code, 400)

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "error": self.message}

    def __repr__(self) -> str:
        return f"ParseError({self.code}, {self.message!r})"


class DatabaseUnavailable(ParseError):
    """The database cannot be reached now (down, restarting, refusing, locked past its bound): 503 with
    Parse's code 1, which clients may retry; a 500 is kept for bugs."""

    def __init__(self, message: str = "Database unavailable, retry later.") -> None:
        super().__init__(Code.INTERNAL_SERVER_ERROR, message, status=503)


class RequestTimedOut(ParseError):
    """The request passed its deadline (--request-timeout), e.g. on a database that stopped answering."""

    def __init__(self, message: str = "Request timed out, retry later.") -> None:
        super().__init__(Code.TIMEOUT, message, status=503)


class Unauthorized(Exception):
    """Missing or wrong keys: Parse Server answers 403 ``{"error": "unauthorized"}`` without a code."""

    def __init__(self, message: str = "unauthorized") -> None:
        super().__init__(message)
        self.message = message
