"""``cloud.Query``: a query over one class, as the REST API takes it.

Its state is plain REST: ``where`` (the REST where dict), ``limit``, ``skip``, ``order`` (Parse's
comma-separated keys, ``-`` for descending), ``keys``, ``include`` and ``exclude_keys``. A
``before_find`` trigger receives the query of the request being served and changes these in place.
"""

from __future__ import annotations

from typing import Any

from bastion.domain.read import FindRequest


class Query:
    def __init__(self, class_name: Any) -> None:
        name = getattr(class_name, "class_name", class_name)
        if not isinstance(name, str) or not name:
            raise ValueError("cloud.Query needs a class name or a cloud object class")
        self.class_name: str = name
        self.where: dict[str, Any] = {}
        self.limit: int | None = None
        self.skip: int = 0
        self.order: str | None = None
        self.keys: list[str] | None = None
        self.include: list[str] = []
        self.exclude_keys: list[str] = []

    @classmethod
    def from_find_request(cls, class_name: str, request: FindRequest) -> Query:
        query = cls(class_name)
        query.where = dict(request.where) if isinstance(request.where, dict) else {}
        query.limit = request.limit
        query.skip = request.skip
        query.order = request.order
        query.keys = list(request.keys) if request.keys is not None else None
        query.include = list(request.include)
        query.exclude_keys = list(request.exclude_keys)
        return query

    def to_find_request(self, count: bool = False) -> FindRequest:
        return FindRequest(where=self.where or None, order=self.order, limit=self.limit, skip=self.skip,
                           keys=self.keys, exclude_keys=list(self.exclude_keys), include=list(self.include),
                           count=count)

    def __repr__(self) -> str:
        return f"<Query {self.class_name} where={self.where!r}>"
