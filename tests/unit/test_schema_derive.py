"""ClassSchema.derive: computed once per key, and bounded (keys can come from clients)."""

from bastion.core.schema import DERIVED_LIMIT, ClassSchema


def test_derive_computes_once_per_key() -> None:
    schema = ClassSchema.new("Thing")
    calls: list[str] = []

    def make(text: str) -> str:
        calls.append(text)
        return text.upper()

    assert schema.derive(("k", "a"), lambda: make("a")) == "A"
    assert schema.derive(("k", "a"), lambda: make("again")) == "A"
    assert schema.derive(("k", "b"), lambda: make("b")) == "B"
    assert calls == ["a", "b"]
    assert schema.derive("none", lambda: None) is None
    assert schema.derive("none", lambda: "computed again") is None  # a None result is kept too


def test_derive_starts_over_when_full() -> None:
    schema = ClassSchema.new("Thing")
    for i in range(DERIVED_LIMIT * 3):
        assert schema.derive(i, lambda i=i: i * 2) == i * 2
        assert len(schema.derived) <= DERIVED_LIMIT
