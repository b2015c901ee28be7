"""SQLite's spellings for aggregation pipelines (see ``aggregate_sql.py``).

Dates are ISO-8601 text in UTC, so their parts come from strftime; SQLite 3.40 has no ISO week
formats, so the ISO week and year are read off the Thursday of the date's week.
"""

from __future__ import annotations

from bastion.adapters.storage.aggregate_sql import AggregateHooks

_THURSDAY = "date({x}, '-3 days', 'weekday 4')"
DATE_PARTS = {
    "YEAR": "CAST(strftime('%Y', {x}) AS INTEGER)",
    "MONTH": "CAST(strftime('%m', {x}) AS INTEGER)",
    "DAY": "CAST(strftime('%d', {x}) AS INTEGER)",
    "HOUR": "CAST(strftime('%H', {x}) AS INTEGER)",
    "MINUTE": "CAST(strftime('%M', {x}) AS INTEGER)",
    # PostgreSQL: seconds with their fraction, rounded by the cast to integer.
    "SECOND": "CAST(ROUND(strftime('%f', {x})) AS INTEGER)",
    "MILLISECONDS": "CAST(ROUND(strftime('%f', {x}) * 1000) AS INTEGER)",
    "DOW": "CAST(strftime('%w', {x}) AS INTEGER)",
    "ISODOW": "((CAST(strftime('%w', {x}) AS INTEGER) + 6) % 7 + 1)",
    "DOY": "CAST(strftime('%j', {x}) AS INTEGER)",
    "WEEK": f"((CAST(strftime('%j', {_THURSDAY}) AS INTEGER) - 1) / 7 + 1)",
    "ISOYEAR": f"CAST(strftime('%Y', {_THURSDAY}) AS INTEGER)",
}
JSON_KINDS = frozenset({"Object", "Array", "Json"})


class SqliteAggregateHooks(AggregateHooks):
    empty_array = "'[]'"

    def date_part(self, expr: str, unit: str) -> str:
        return DATE_PARTS[unit].format(x=expr)

    def min_max(self, op: str, expr: str, kind: str) -> str:
        return f"{op.upper()}({expr})"  # BINARY collation: UTF-8 bytes, i.e. code points

    def collect(self, expr: str, kind: str, distinct: bool, window: str = "") -> str:
        item = f"json({expr})" if kind in JSON_KINDS else expr
        return f"json_group_array({'DISTINCT ' if distinct else ''}{item}) FILTER (WHERE {expr} IS NOT NULL){window}"

    def any_value(self, expr: str) -> str:
        return f"MAX({expr})"

    def count_times(self, factor: str) -> str:
        return f"(COUNT(*) * {factor})"

    def offset(self, mark: str) -> str:
        return f"LIMIT -1 OFFSET {mark}"

    def unwind(self, column: str, preserve: bool) -> tuple[str, str, str]:
        join = "LEFT JOIN" if preserve else "JOIN"
        source = f"json_each(CASE WHEN json_type({column}) = 'array' THEN {column} END)"
        # Elements as JSON text, as the Json kind is held on SQLite.
        element = ("(CASE _e.type WHEN 'null' THEN NULL WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
                   "WHEN 'object' THEN _e.value WHEN 'array' THEN _e.value ELSE json_quote(_e.value) END)")
        return f"{join} {source} AS _e", element, "_e.key"
