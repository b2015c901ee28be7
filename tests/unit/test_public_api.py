"""The package's public names are a promise: changing them is a deliberate act."""

import bastion


def test_public_api_is_pinned() -> None:
    assert sorted(bastion.__all__) == ["Code", "ParseError", "__version__"]
    for name in bastion.__all__:
        assert hasattr(bastion, name)
