"""index_order: a range on an indexed field orders an unordered query by that field."""

from bastion.core.query import ir
from bastion.core.query.index_order import index_order

N = ir.Field("n", "Number")
NAME = ir.Field("name", "String")
OBJ = ir.Field("obj", "Object", ("x",))
INDEXES = {"n_1": {"n": 1}, "name_obj": {"name": 1, "n": 1}, "obj_1": {"obj": 1}}


def test_range_on_an_indexed_field_orders_by_it() -> None:
    assert index_order(ir.Compare(N, "gt", 5), INDEXES) == [ir.OrderKey(N)]
    both = ir.And((ir.Compare(NAME, "eq", "x"), ir.Compare(N, "lte", 9)))
    assert index_order(both, INDEXES) == [ir.OrderKey(N)]


def test_only_a_leading_index_field_counts() -> None:
    assert index_order(ir.Compare(N, "gt", 5), {"name_n": {"name": 1, "n": 1}}) == []
    assert index_order(ir.Compare(NAME, "gte", "a"), INDEXES) == [ir.OrderKey(NAME)]


def test_no_order_without_a_top_level_range() -> None:
    assert index_order(ir.Compare(N, "eq", 5), INDEXES) == []
    assert index_order(ir.Compare(N, "gt", 5), {}) == []
    assert index_order(ir.Or((ir.Compare(N, "gt", 5), ir.Compare(N, "lt", 1))), INDEXES) == []
    assert index_order(ir.Compare(OBJ, "gt", 5), INDEXES) == []  # a path inside an Object
    assert index_order(ir.Compare(ir.Field("tags", "Array"), "gt", 5), {"t": {"tags": 1}}) == []
