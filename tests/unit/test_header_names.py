"""Header names keep Parse Server's spelling through uvicorn's handling of them."""

from __future__ import annotations

from bastion.http.responses import HeaderName, spelled


def test_names_are_spelled_as_express_sends_them() -> None:
    assert spelled(b"x-parse-job-status-id") == b"x-parse-job-status-id"
    assert bytes(spelled(b"x-parse-job-status-id")) == b"X-Parse-Job-Status-Id"
    assert bytes(spelled(b"location")) == b"Location"
    assert bytes(spelled(b"etag")) == b"ETag"
    assert bytes(spelled(b"Content-Type")) == b"Content-Type"


def test_a_spelled_name_survives_lower_and_compares_as_lowercase() -> None:
    name = HeaderName(b"Content-Length")
    lowered = name.lower()
    # What uvicorn does with each name: lower() it, compare it, write it.
    assert lowered == b"content-length"
    assert (b"content-length" == lowered) is True  # noqa: SIM300 - the reflected comparison
    assert lowered != b"content-type"
    assert b"".join([lowered, b": ", b"2"]) == b"Content-Length: 2"
    assert hash(lowered) == hash(b"content-length")
    assert lowered in {b"content-length"}
