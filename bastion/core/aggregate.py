"""Aggregation pipelines: ``GET /aggregate/:className?pipeline=[...]``, read and planned.

The pipeline JSON is read as Parse Server's AggregateRouter reads it (an array of one-key stages or
an object of stages), then planned against the class schema: every ``$field`` reference is resolved
to a column of the stage's input and every column has a type. The SQL compiler
(``adapters/storage/aggregate_sql.py``) therefore never meets an unchecked name, and
``aggregate_results.py`` knows how to encode every value it gets back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bastion.core.names import field_name_is_valid
from bastion.core.query import ir
from bastion.core.query.parse import QueryLimits, SchemaLookup, parse_where
from bastion.core.schema import ClassSchema
from bastion.core.system_classes import USER
from bastion.core.types import FieldType
from bastion.errors import Code, ParseError

MAX_STAGES = 100
MAX_ROWS = 2**63 - 1
JSON = FieldType("Json")  # an element of an unwound array: any JSON value
NUMBER = FieldType("Number")
STRING = FieldType("String")

# Parse Server's date operators on PostgreSQL (mongoAggregateToPostgres): EXTRACT units.
DATE_UNITS = {
    "$dayOfMonth": "DAY", "$dayOfWeek": "DOW", "$dayOfYear": "DOY", "$isoDayOfWeek": "ISODOW",
    "$isoWeekYear": "ISOYEAR", "$hour": "HOUR", "$minute": "MINUTE", "$second": "SECOND",
    "$millisecond": "MILLISECONDS", "$month": "MONTH", "$week": "WEEK", "$year": "YEAR",
}
ACCUMULATORS = frozenset({"$sum", "$avg", "$min", "$max", "$first", "$last", "$push", "$addToSet"})
ORDERED_TYPES = frozenset({"String", "Number", "Date", "Pointer", "File", "Boolean"})
COLLECTED_TYPES = frozenset({"String", "Number", "Boolean", "Date", "Pointer", "File", "Object", "Array", "Json"})
# Options of the aggregate route that are not stages when the body itself is the pipeline.
NOT_STAGES = frozenset({"distinct", "where", "hint", "explain", "comment", "readPreference", "pipeline"})


def _bad(message: str) -> ParseError:
    return ParseError(Code.INVALID_QUERY, message)


# --- the plan -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the SQL alias: a valid field name, objectId/createdAt/updatedAt, or _k<n> (key parts)
    type: FieldType  # how values are stored and compared (Json for unwound elements)
    key: str | None = None  # part of a composite group key: its name inside objectId
    element: FieldType | None = None  # items of a $push/$addToSet array


@dataclass(frozen=True, slots=True)
class Match:
    where: ir.Node
    on_table: bool  # the first stage: compiled against the class table itself


@dataclass(frozen=True, slots=True)
class GroupKey:
    out: Column
    source: Column | None  # None: every document in one group
    date_unit: str | None = None


@dataclass(frozen=True, slots=True)
class Accumulate:
    out: Column
    op: str  # sum avg min max first last push addToSet count
    source: Column | None = None
    factor: float | int = 1  # for count: {$sum: <number>}


@dataclass(frozen=True, slots=True)
class Group:
    keys: tuple[GroupKey, ...]
    accumulators: tuple[Accumulate, ...]
    ordered: bool  # the input has an order ($sort upstream) for $first and $last; else natural order


@dataclass(frozen=True, slots=True)
class Project:
    columns: tuple[tuple[Column, Column], ...]  # (out, source)


@dataclass(frozen=True, slots=True)
class Sort:
    keys: tuple[tuple[Column, bool], ...]  # (column, descending)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int


@dataclass(frozen=True, slots=True)
class Skip:
    count: int


@dataclass(frozen=True, slots=True)
class Unwind:
    source: Column
    out: Column
    preserve: bool


@dataclass(frozen=True, slots=True)
class Count:
    out: Column


Stage = Match | Group | Project | Sort | Limit | Skip | Unwind | Count


@dataclass(frozen=True, slots=True)
class PlannedStage:
    stage: Stage
    columns: tuple[Column, ...]  # the stage's output
    ordered: bool  # whether the output carries an order (a $sort upstream, not undone by $group)


@dataclass(frozen=True, slots=True)
class Plan:
    base: tuple[Column, ...]  # the class table's columns the pipeline reads
    stages: tuple[PlannedStage, ...]
    whole_documents: bool  # no stage reshaped the documents: relation fields are added back

    @property
    def columns(self) -> tuple[Column, ...]:
        return self.stages[-1].columns if self.stages else self.base

    @property
    def ordered(self) -> bool:
        return bool(self.stages) and self.stages[-1].ordered


# --- reading the pipeline -------------------------------------------------------------------------


def raw_stages(pipeline: Any) -> list[tuple[str, Any]]:
    """``(name, argument)`` of each stage, as AggregateRouter.getPipeline reads them."""
    if isinstance(pipeline, dict):
        items: list[Any] = [{k: v} for k, v in pipeline.items() if v is not None]
    elif isinstance(pipeline, list):
        items = pipeline
    else:
        raise _bad("Invalid pipeline, must be an array or an object of stages.")
    if len(items) > MAX_STAGES:
        raise _bad("Too many pipeline stages.")
    stages: list[tuple[str, Any]] = []
    for item in items:
        if not isinstance(item, dict) or len(item) != 1:
            keys = ", ".join(str(k)[:50] for k in item) if isinstance(item, dict) else ""
            raise _bad(f"Pipeline stages should only have one key but found {keys}.")
        name, arg = next(iter(item.items()))
        if name in ("distinct", "where"):
            continue
        if not name.startswith("$"):
            raise _bad(f"Invalid aggregate stage '{name[:100]}'.")
        if name == "$group":
            if not isinstance(arg, dict):
                raise _bad("Invalid parameter for query: group. Missing key _id")
            if "objectId" in arg:
                raise _bad("Cannot use 'objectId' in aggregation stage $group.")
            if "_id" not in arg:
                raise _bad("Invalid parameter for query: group. Missing key _id")
        stages.append((name, arg))
    return stages


# --- planning -------------------------------------------------------------------------------------


def base_columns(schema: ClassSchema) -> tuple[Column, ...]:
    columns = [Column("objectId", STRING), Column("createdAt", FieldType("Date")),
               Column("updatedAt", FieldType("Date"))]
    for name, ft in schema.fields.items():
        if name in ("objectId", "createdAt", "updatedAt") or ft.type in ("Relation", "ACL"):
            continue
        if schema.class_name == USER and name in ("password", "authData"):
            continue  # never stored as such, or not for aggregation's eyes
        columns.append(Column(name, ft))
    return tuple(columns)


class _Planner:
    def __init__(self, schema: ClassSchema, lookup: SchemaLookup, limits: QueryLimits) -> None:
        self.schema = schema
        self.lookup = lookup
        self.limits = limits
        self.key_parts = 0

    def plan(self, stages: list[tuple[str, Any]]) -> Plan:
        base = base_columns(self.schema)
        columns = base
        ordered = False
        whole = True
        planned: list[PlannedStage] = []
        for name, arg in stages:
            stage, columns, ordered = self.stage(name, arg, columns, ordered, not planned)
            if not isinstance(stage, (Match, Sort, Limit, Skip)):
                whole = False
            planned.append(PlannedStage(stage, columns, ordered))
        return Plan(base, tuple(planned), whole)

    def stage(self, name: str, arg: Any, columns: tuple[Column, ...], ordered: bool,
              first: bool) -> tuple[Stage, tuple[Column, ...], bool]:
        if name == "$match":
            return self.match(arg, columns, first), columns, ordered
        if name == "$group":
            group = self.group(arg, columns, ordered)
            out = tuple(k.out for k in group.keys) + tuple(a.out for a in group.accumulators)
            return group, out, False
        if name == "$project":
            project = self.project(arg, columns)
            return project, tuple(out for out, _ in project.columns), ordered
        if name == "$sort":
            return self.sort(arg, columns), columns, True
        if name in ("$limit", "$skip"):
            # 0 changes nothing: Parse Server on PostgreSQL skips a falsy $limit or $skip.
            count = _count_arg(name, arg)
            return (Limit(count) if name == "$limit" and count else Skip(count)), columns, ordered
        if name == "$unwind":
            unwind = self.unwind(arg, columns)
            return unwind, tuple(unwind.out if c is unwind.source else c for c in columns), ordered
        if name == "$count":
            if not isinstance(arg, str) or not field_name_is_valid(arg):
                raise _bad("$count needs a valid field name.")
            counted = Column(arg, NUMBER)
            return Count(counted), (counted,), False
        raise _bad(f"Invalid aggregate stage '{name[:100]}'.")

    # --- references -----------------------------------------------------------------------------

    def ref(self, raw: Any, columns: tuple[Column, ...]) -> Column:
        """The column a ``$field`` names; objectId for ``$_id``, as Parse Server on PostgreSQL."""
        if not isinstance(raw, str) or not raw.startswith("$") or len(raw) < 2:
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {str(raw)[:100]}")
        name = {"$_id": "objectId", "$_created_at": "createdAt", "$_updated_at": "updatedAt"}.get(raw, raw[1:])
        if not field_name_is_valid(name) and name not in ("objectId", "createdAt", "updatedAt"):
            raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {name[:100]}")
        for column in columns:
            if column.name == name and column.key is None:
                return column
        if any(c.key is not None for c in columns) and name == "objectId":
            raise _bad("A composite objectId cannot be used here; name one of its fields.")
        raise _bad(f'column "{name[:100]}" does not exist')

    def match(self, arg: Any, columns: tuple[Column, ...], first: bool) -> Match:
        if not isinstance(arg, dict):
            raise _bad("$match needs an object.")
        where = _rename_id(arg)
        if first:
            schema = self.schema
        else:
            names = {c.name for c in columns if c.key is None and c.type.type != "Json"}
            for key in _where_keys(where):
                if key.split(".")[0] not in names:
                    raise _bad(f'column "{key[:100]}" does not exist')
            schema = ClassSchema(self.schema.class_name,
                                 {c.name: c.type for c in columns if c.key is None and c.type.type != "Json"})
        return Match(parse_where(where, schema, self.schema.class_name, self.lookup, self.limits), first)

    def group(self, arg: dict[str, Any], columns: tuple[Column, ...], ordered: bool) -> Group:
        keys = self.group_keys(arg["_id"], columns)
        accumulators: list[Accumulate] = []
        for name, spec in arg.items():
            if name == "_id":
                continue
            if not isinstance(name, str) or not field_name_is_valid(name):
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {str(name)[:100]}")
            accumulators.append(self.accumulator(name, spec, columns))
        return Group(tuple(keys), tuple(accumulators), ordered)

    def group_keys(self, raw: Any, columns: tuple[Column, ...]) -> list[GroupKey]:
        if isinstance(raw, str) and raw:
            source = _groupable(self.ref(raw, columns))
            return [GroupKey(Column("objectId", _key_type(source.type)), source)]
        if isinstance(raw, dict) and raw:
            keys: list[GroupKey] = []
            for alias, spec in raw.items():
                if not isinstance(alias, str) or not field_name_is_valid(alias):
                    raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {str(alias)[:100]}")
                out_name = f"_k{self.key_parts}"
                self.key_parts += 1
                if isinstance(spec, dict) and len(spec) == 1:
                    op, target = next(iter(spec.items()))
                    if op not in DATE_UNITS:
                        raise _bad(f"Invalid operator {str(op)[:50]} in a group key.")
                    source = self.ref(target, columns)
                    if source.type.type != "Date":
                        raise _bad(f"{op} needs a Date field.")
                    keys.append(GroupKey(Column(out_name, NUMBER, alias), source, DATE_UNITS[op]))
                else:
                    source = _groupable(self.ref(spec, columns))
                    keys.append(GroupKey(Column(out_name, _key_type(source.type), alias), source))
            return keys
        # null, "", {}, [] and other constants: one group, objectId null (Parse Server on PostgreSQL).
        return [GroupKey(Column("objectId", STRING), None)]

    def accumulator(self, name: str, spec: Any, columns: tuple[Column, ...]) -> Accumulate:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise _bad(f"The field '{name}' must be an accumulator object.")
        op, arg = next(iter(spec.items()))
        if op not in ACCUMULATORS:
            raise _bad(f"Unknown group operator '{str(op)[:50]}'.")
        if op == "$sum" and not isinstance(arg, str):
            if isinstance(arg, bool) or not isinstance(arg, (int, float)):
                raise _bad("$sum needs a field or a number.")
            return Accumulate(Column(name, NUMBER), "count", None, arg)
        source = self.ref(arg, columns)
        kind = source.type.type
        if op in ("$sum", "$avg"):
            if kind != "Number":
                raise _bad(f"{op} needs a Number field.")
            return Accumulate(Column(name, NUMBER), op[1:], source)
        if op in ("$min", "$max"):
            if kind not in ORDERED_TYPES:
                raise _bad(f"{op} needs a String, Number, Date, Boolean, Pointer or File field.")
            return Accumulate(Column(name, source.type), op[1:], source)
        if kind not in COLLECTED_TYPES:
            raise _bad(f"{op} does not accept a {kind} field.")
        if op in ("$first", "$last"):
            return Accumulate(Column(name, source.type, element=source.element), op[1:], source)
        return Accumulate(Column(name, FieldType("Array"), element=source.type), op[1:], source)

    def project(self, arg: Any, columns: tuple[Column, ...]) -> Project:
        if not isinstance(arg, dict) or not arg:
            raise _bad("$project needs a non-empty object.")
        include: list[tuple[Column, Column]] = []
        exclude: set[str] = set()
        for raw_name, spec in arg.items():
            name = "objectId" if raw_name == "_id" else raw_name
            if not isinstance(name, str) or (not field_name_is_valid(name)
                                             and name not in ("objectId", "createdAt", "updatedAt")):
                raise ParseError(Code.INVALID_KEY_NAME, f"Invalid field name: {str(raw_name)[:100]}")
            if spec in (0, False) and not isinstance(spec, float):
                exclude.add(name)
            elif spec in (1, True) and not isinstance(spec, float):
                if name == "objectId" and any(c.key is not None for c in columns):
                    include.extend((c, c) for c in columns if c.key is not None)
                    continue
                source = self.ref("$" + name, columns)
                include.append((source, source))
            elif isinstance(spec, str):
                source = self.ref(spec, columns)
                include.append((Column(name, source.type, None, source.element), source))
            else:
                raise _bad(f"Invalid $project value for {name[:100]}.")
        if include and exclude - {"objectId"}:
            raise _bad("$project cannot both include and exclude fields.")
        if not include:
            kept = [c for c in columns if c.name not in exclude and not (c.key and "objectId" in exclude)]
            include = [(c, c) for c in kept]
        elif "objectId" in exclude:
            include = [(out, src) for out, src in include if out.name != "objectId" and out.key is None]
        if not include:
            raise _bad("$project leaves no field.")
        if len({out.name for out, _ in include}) != len(include):
            raise _bad("$project names a field twice.")
        return Project(tuple(include))

    def sort(self, arg: Any, columns: tuple[Column, ...]) -> Sort:
        if not isinstance(arg, dict) or not arg:
            raise _bad("$sort needs a non-empty object.")
        keys: list[tuple[Column, bool]] = []
        for raw_name, direction in arg.items():
            if direction not in (1, -1) or isinstance(direction, bool):
                raise _bad("$sort directions are 1 or -1.")
            name = "objectId" if raw_name in ("_id", "objectId") else raw_name
            parts = [c for c in columns if c.key is not None]
            if name == "objectId" and parts:
                keys.extend((c, direction == -1) for c in parts)
                continue
            if isinstance(name, str) and name.startswith(("objectId.", "_id.")) and parts:
                alias = name.split(".", 1)[1]
                found = [c for c in parts if c.key == alias]
                if not found:
                    raise _bad(f'column "{name[:100]}" does not exist')
                keys.append((found[0], direction == -1))
                continue
            column = self.ref("$" + name if isinstance(name, str) else name, columns)
            if column.type.type in ("GeoPoint", "Polygon", "Bytes"):
                raise _bad(f"Cannot sort by {name[:100]}.")
            keys.append((column, direction == -1))
        return Sort(tuple(keys))

    def unwind(self, arg: Any, columns: tuple[Column, ...]) -> Unwind:
        preserve = False
        if isinstance(arg, dict):
            unknown = set(arg) - {"path", "preserveNullAndEmptyArrays"}
            if unknown:
                raise _bad(f"Unsupported $unwind option {sorted(unknown)[0][:50]}.")
            preserve = arg.get("preserveNullAndEmptyArrays", False)
            if not isinstance(preserve, bool):
                raise _bad("preserveNullAndEmptyArrays must be a boolean.")
            arg = arg.get("path")
        source = self.ref(arg, columns)
        if source.type.type != "Array":
            raise _bad("$unwind needs an Array field.")
        return Unwind(source, Column(source.name, JSON), preserve)


def _count_arg(name: str, arg: Any) -> int:
    if isinstance(arg, bool) or not isinstance(arg, (int, float)) or (isinstance(arg, float) and not arg.is_integer()):
        raise _bad(f"{name} needs an integer.")
    if arg < 0:
        raise _bad(f"{name} must not be negative")
    return min(int(arg), MAX_ROWS)


def _groupable(column: Column) -> Column:
    if column.type.type in ("GeoPoint", "Polygon"):
        raise _bad(f"Cannot group by the {column.type.type} field {column.name}.")
    return column


def _key_type(ft: FieldType) -> FieldType:
    # Parse Server on PostgreSQL groups pointers by their object ids and answers them bare.
    return STRING if ft.type == "Pointer" else ft


def _rename_id(where: dict[str, Any]) -> dict[str, Any]:
    """Mongo's ``_id`` in a ``$match`` means objectId (Parse Server on PostgreSQL renames it too)."""
    out: dict[str, Any] = {}
    for key, value in where.items():
        if key == "_id":
            key = "objectId"
        elif key in ("$or", "$and", "$nor") and isinstance(value, list):
            value = [_rename_id(v) if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def _where_keys(where: dict[str, Any]) -> list[str]:
    keys: list[str] = []
    for key, value in where.items():
        if key in ("$or", "$and", "$nor") and isinstance(value, list):
            for sub in value:
                if isinstance(sub, dict):
                    keys.extend(_where_keys(sub))
        elif isinstance(key, str) and not key.startswith("$"):
            keys.append(key)
    return keys


def plan_pipeline(pipeline: Any, schema: ClassSchema, lookup: SchemaLookup,
                  limits: QueryLimits | None = None, where: Any = None) -> Plan:
    """The pipeline, validated and typed; a ``where`` becomes a leading ``$match``."""
    stages = raw_stages(pipeline)
    if where:
        stages.insert(0, ("$match", where))
    return _Planner(schema, lookup, limits or QueryLimits()).plan(stages)
