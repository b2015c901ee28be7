"""``cloud.Relation``: a relation field of an object, changed through its parent and queried."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bastion.cloud._changes import relation_target

if TYPE_CHECKING:
    from bastion.cloud.objects import Object


class Relation:
    """A relation field of an object: ``add``/``remove`` queue ``AddRelation``/``RemoveRelation``
    on the parent (written by ``await parent.save()``); ``query()`` finds the related objects."""

    def __init__(self, parent: Object, key: str, target_class: str | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError("a relation needs a field name")
        self.parent = parent
        self.key = key
        self._target_class = target_class

    @property
    def target_class(self) -> str | None:
        if self._target_class:
            return self._target_class
        value = self.parent._value(self.key)
        if isinstance(value, dict):
            if value.get("__type") == "Relation" and isinstance(name := value.get("className"), str):
                return name
            return relation_target(value)
        return None

    def add(self, objects: Object | list[Object]) -> Relation:
        self.parent.add_relation(self.key, objects)
        return self

    def remove(self, objects: Object | list[Object]) -> Relation:
        self.parent.remove_relation(self.key, objects)
        return self

    def query(self) -> Any:
        """A ``cloud.Query`` of the objects in the relation (its class from the field, or else the schema)."""
        from bastion.cloud.query import Query

        target = self.target_class
        if target is None:
            from bastion.cloud._runtime.context import current_server

            schema = current_server().schemas.get(self.parent.class_name)
            field = schema.fields.get(self.key) if schema is not None else None
            target = field.target_class if field is not None and field.type == "Relation" else None
        if not target:
            raise ValueError(f"{self.parent.class_name}.{self.key} is not a known relation; "
                             "give its class: obj.relation(key, 'ClassName')")
        return Query(target).related_to(self.parent, self.key)

    def __repr__(self) -> str:
        return f"<Relation {self.parent!r}.{self.key} -> {self.target_class}>"
