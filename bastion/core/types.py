"""Parse's field types: inferring them from REST JSON, checking values, and dates."""

from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from bastion.errors import Code, ParseError

FIELD_TYPES = frozenset(
    {
        "String",
        "Number",
        "Boolean",
        "Date",
        "Object",
        "Array",
        "Pointer",
        "Relation",
        "File",
        "GeoPoint",
        "Polygon",
        "Bytes",
        "ACL",
    }
)


@dataclass(frozen=True, slots=True)
class FieldType:
    """One field of a class schema, as ``_SCHEMA`` and the schemas API spell it."""

    type: str
    target_class: str | None = None
    required: bool = False
    default_value: Any = None
    # Spellings kept only to answer them back, as Parse Server keeps a field's definition as given:
    # an explicit ``"required": false`` (Parse Dashboard's "Add a new column" sends one).
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def same_type(self, other: FieldType) -> bool:
        return self.type == other.type and self.target_class == other.target_class

    def describe(self) -> str:
        return f"{self.type}<{self.target_class}>" if self.target_class else self.type

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.target_class:
            out["targetClass"] = self.target_class
        if self.required:
            out["required"] = True
        elif self.extra.get("required") is False:
            out["required"] = False
        if self.default_value is not None:
            out["defaultValue"] = self.default_value
        return out

    @classmethod
    def from_json(cls, data: Any) -> FieldType:
        if isinstance(data, str):
            data = {"type": data}
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise ParseError(Code.INVALID_JSON, "invalid JSON")
        return cls(
            type=data["type"],
            target_class=data.get("targetClass"),
            required=bool(data.get("required", False)),
            default_value=data.get("defaultValue"),
            extra=explicit_required(data),
        )


def explicit_required(spec: dict[str, Any]) -> dict[str, Any]:
    """The ``extra`` of a field definition that says ``"required": false`` in so many words."""
    return {"required": False} if spec.get("required") is False else {}


def _typed(kind: str, target: str | None = None) -> FieldType:
    return FieldType(kind, target)


STRING, NUMBER, BOOLEAN, DATE = _typed("String"), _typed("Number"), _typed("Boolean"), _typed("Date")
OBJECT, ARRAY, FILE, GEOPOINT = _typed("Object"), _typed("Array"), _typed("File"), _typed("GeoPoint")
POLYGON, BYTES, ACL = _typed("Polygon"), _typed("Bytes"), _typed("ACL")


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def infer_type(value: Any) -> FieldType | None:
    """The field type a REST value implies; None for null and Delete (they add no field)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, str):
        return STRING
    if is_number(value):
        return NUMBER
    if isinstance(value, list):
        return ARRAY
    if not isinstance(value, dict):
        raise ParseError(Code.INCORRECT_TYPE, "invalid value type")
    kind = value.get("__type")
    if kind is not None:
        return _infer_typed_object(kind, value)
    op = value.get("__op")
    if op is not None:
        return _infer_operation(op, value)
    return OBJECT


def _infer_typed_object(kind: Any, value: dict[str, Any]) -> FieldType:
    if kind == "Pointer" and isinstance(value.get("className"), str) and value["className"]:
        return FieldType("Pointer", value["className"])
    if kind == "Relation" and isinstance(value.get("className"), str) and value["className"]:
        return FieldType("Relation", value["className"])
    if kind == "File" and value.get("name"):
        return FILE
    if kind == "Date" and value.get("iso"):
        return DATE
    if kind == "GeoPoint" and value.get("latitude") is not None and value.get("longitude") is not None:
        return GEOPOINT
    if kind == "Bytes" and value.get("base64"):
        return BYTES
    if kind == "Polygon" and value.get("coordinates"):
        return POLYGON
    raise ParseError(Code.INCORRECT_TYPE, f"This is not a valid {str(kind)[:50]}")


def _infer_operation(op: Any, value: dict[str, Any]) -> FieldType | None:
    if op == "Increment":
        return NUMBER
    if op == "Delete":
        return None
    if op in ("Add", "AddUnique", "Remove"):
        return ARRAY
    if op in ("AddRelation", "RemoveRelation"):
        objects = value.get("objects")
        if not isinstance(objects, list) or not objects or not isinstance(objects[0], dict):
            raise ParseError(Code.INVALID_JSON, f"{op} requires a non-empty objects array")
        target = objects[0].get("className")
        if not isinstance(target, str):
            raise ParseError(Code.INVALID_JSON, "objects must be pointers")
        return FieldType("Relation", target)
    if op == "Batch":
        ops = value.get("ops")
        if not isinstance(ops, list) or not ops or not isinstance(ops[0], dict):
            raise ParseError(Code.INVALID_JSON, "Batch requires a non-empty ops array")
        return _infer_operation(ops[0].get("__op"), ops[0])
    raise ParseError(Code.INVALID_JSON, f"unexpected op: {str(op)[:50]}")


# --- dates --------------------------------------------------------------------------------------


def parse_iso(text: Any) -> datetime:
    """A Parse ISO-8601 date string as an aware UTC datetime (111 when it is not one)."""
    if not isinstance(text, str) or len(text) > 64:
        raise ParseError(Code.INCORRECT_TYPE, f"invalid date: {str(text)[:64]}")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ParseError(Code.INCORRECT_TYPE, f"invalid date: {text}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    elif parsed.tzinfo is not UTC:
        parsed = parsed.astimezone(UTC)
    # Parse keeps milliseconds; truncating here keeps every backend and the matcher in agreement.
    if parsed.microsecond % 1000:
        parsed = parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)
    return parsed


def format_iso(moment: datetime) -> str:
    """Parse's date format: UTC with exactly three fractional digits and a ``Z``."""
    if moment.tzinfo is not UTC:
        # Naive values are UTC already (asyncpg gives the earliest timestamp without a zone).
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def now_ms() -> datetime:
    """The current moment at Parse's precision (milliseconds), as every stored date has it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def now_iso() -> str:
    return format_iso(datetime.now(UTC))


def encode_date(moment: datetime) -> dict[str, str]:
    return {"__type": "Date", "iso": format_iso(moment)}


# --- value checks -------------------------------------------------------------------------------


def check_number(value: Any, what: str = "number") -> float | int:
    if not is_number(value):
        raise ParseError(Code.INCORRECT_TYPE, f"{what} must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParseError(Code.INVALID_JSON, f"{what} must be finite")
    if isinstance(value, int) and abs(value) > 2**63:
        raise ParseError(Code.INVALID_JSON, f"{what} is out of range")
    return value


def check_geopoint(value: Any) -> tuple[float, float]:
    """(latitude, longitude) of a GeoPoint, validated as Parse does."""
    if not isinstance(value, dict) or value.get("__type") != "GeoPoint":
        raise ParseError(Code.INCORRECT_TYPE, "invalid GeoPoint")
    lat, lng = value.get("latitude"), value.get("longitude")
    if not is_number(lat) or not is_number(lng):
        raise ParseError(Code.INVALID_JSON, "GeoPoint latitude and longitude must be numbers")
    if not -90.0 <= lat <= 90.0:
        raise ParseError(Code.INVALID_JSON, "GeoPoint latitude out of bounds: -90.0 <= lat <= 90.0")
    if not -180.0 <= lng <= 180.0:
        raise ParseError(Code.INVALID_JSON, "GeoPoint longitude out of bounds: -180.0 <= lng <= 180.0")
    return float(lat), float(lng)


def check_polygon(value: Any) -> list[list[float]]:
    coords = value.get("coordinates") if isinstance(value, dict) else None
    if not isinstance(coords, list):
        raise ParseError(Code.INVALID_JSON, "Polygon coordinates must be an array")
    if len(coords) < 3:
        raise ParseError(Code.INVALID_JSON, "Polygon must have at least 3 values")
    points: list[list[float]] = []
    for point in coords:
        if not isinstance(point, list) or len(point) != 2 or not all(is_number(p) for p in point):
            raise ParseError(Code.INVALID_JSON, "Polygon coordinates must be [latitude, longitude] pairs")
        lat, lng = point
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise ParseError(Code.INVALID_JSON, "Polygon point out of bounds")
        points.append([float(lat), float(lng)])
    return points


def close_polygon(points: list[list[float]]) -> list[list[float]]:
    """The ring Parse Server on PostgreSQL stores, compares and answers: closed (the first point
    appended when the last differs), with at least three distinct vertices (else Parse's code 1)."""
    if points[0] != points[-1]:
        points = [*points, points[0]]
    distinct = {(lat, lng) for lat, lng in points}
    if len(distinct) < 3:
        raise ParseError(Code.INTERNAL_SERVER_ERROR, "GeoJSON: Loop must have at least 3 different vertices")
    return points


def check_bytes(value: Any) -> str:
    data = value.get("base64") if isinstance(value, dict) else None
    if not isinstance(data, str):
        raise ParseError(Code.INCORRECT_TYPE, "Bytes must carry base64")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ParseError(Code.INVALID_JSON, "Bytes must carry valid base64") from None
    return data


def check_value(value: Any, expected: FieldType) -> None:
    """Deep checks for typed values once the type itself is known to match."""
    kind = expected.type
    if kind == "Number":
        check_number(value)
    elif kind == "Date":
        parse_iso(value.get("iso"))
    elif kind == "GeoPoint":
        check_geopoint(value)
    elif kind == "Polygon":
        check_polygon(value)
    elif kind == "Bytes":
        check_bytes(value)
    elif kind == "Pointer":
        object_id = value.get("objectId")
        if not isinstance(object_id, str) or not object_id or len(object_id) > 120:
            raise ParseError(Code.INVALID_POINTER, "Pointer must carry a string objectId")
    elif kind == "File" and not isinstance(value.get("name"), str):
        raise ParseError(Code.INCORRECT_TYPE, "File must carry a name")
