"""decode_query answers exactly as the standard library's parser does."""

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from bastion.http.context import decode_query

SAMPLES = ["a=1&b=2", "a", "a=&b", "&&a=1", "a=1;b=2", "a+b=c+d%20e", "a=%ZZ", "x=%C3%A9", "a=1&a=2", "=v",
           "where=%7B%22n%22%3A%7B%22%24gt%22%3A5%7D%7D&limit=20", "k=%", "k=%2", "%FF=%FE", "a==b", ""]


def expected(raw: bytes) -> dict[str, str]:
    return dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))


def test_samples_match_parse_qsl() -> None:
    for sample in SAMPLES:
        raw = sample.encode()
        assert decode_query(raw) == expected(raw), sample


@given(st.lists(st.sampled_from(list("ab=&%+;2Fe9 \u00e9")), max_size=30))
def test_any_query_matches_parse_qsl(chars: list[str]) -> None:
    raw = "".join(chars).encode("latin-1")
    assert decode_query(raw) == expected(raw)
