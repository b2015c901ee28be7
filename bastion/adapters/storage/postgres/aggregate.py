"""PostgreSQL's spellings for aggregation pipelines (see ``aggregate_sql.py``); date parts are
Parse Server's own: ``EXTRACT(<unit> FROM <date> AT TIME ZONE 'UTC')::integer``."""

from __future__ import annotations

from bastion.adapters.storage.aggregate_sql import AggregateHooks

TEXT_KINDS = frozenset({"String", "Pointer", "File"})
UNITS = frozenset({"DAY", "DOW", "DOY", "ISODOW", "ISOYEAR", "HOUR", "MINUTE", "SECOND", "MILLISECONDS",
                   "MONTH", "WEEK", "YEAR"})


class PostgresAggregateHooks(AggregateHooks):
    empty_array = "'[]'::jsonb"

    def __init__(self, collate: str) -> None:
        self.collate = collate  # strings compare by code point, as everywhere else

    def date_part(self, expr: str, unit: str) -> str:
        if unit not in UNITS:
            raise ValueError(unit)
        return f"EXTRACT({unit} FROM {expr} AT TIME ZONE 'UTC')::integer"

    def min_max(self, op: str, expr: str, kind: str) -> str:
        if kind == "Boolean":
            return f"{'BOOL_AND' if op == 'min' else 'BOOL_OR'}({expr})"
        collate = self.collate if kind in TEXT_KINDS else ""
        return f"{op.upper()}({expr}{collate})"

    def collect(self, expr: str, kind: str, distinct: bool, window: str = "") -> str:
        agg = f"jsonb_agg({'DISTINCT ' if distinct else ''}{expr}) FILTER (WHERE {expr} IS NOT NULL){window}"
        return f"COALESCE({agg}, '[]'::jsonb)"

    def any_value(self, expr: str) -> str:
        return f"(array_agg({expr}))[1]"

    def count_times(self, factor: str) -> str:
        return f"(COUNT(*) * {factor}::float8)"

    def offset(self, mark: str) -> str:
        return f"OFFSET {mark}"

    def unwind(self, column: str, preserve: bool) -> tuple[str, str, str]:
        join = "LEFT JOIN LATERAL" if preserve else "CROSS JOIN LATERAL"
        source = (f"jsonb_array_elements(CASE WHEN jsonb_typeof({column}) = 'array' THEN {column} END) "
                  "WITH ORDINALITY AS _e(v, i)")
        return f"{join} {source}{' ON TRUE' if preserve else ''}", "NULLIF(_e.v, 'null'::jsonb)", "_e.i"
