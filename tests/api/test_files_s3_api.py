"""The files API of a Bastion whose --files is S3 (moto in server mode, over HTTP): served through
Bastion, or (presign=1) by a redirect to a presigned URL of the object."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import Server, start_server, stop_server
from tests.contract.s3_server import FAKE_CREDENTIALS


def s3_server(moto_s3: Any, **params: str) -> Server:
    if isinstance(moto_s3, str):
        pytest.skip(moto_s3)
    saved = dict(os.environ)
    os.environ.update(FAKE_CREDENTIALS)  # the server process finds its credentials as in production
    try:
        return start_server("sqlite", None, ["--files", moto_s3.files_url(moto_s3.new_bucket(), "app", **params)])
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def proxied(own_server: None, moto_s3: Any) -> Iterator[Server]:
    server = s3_server(moto_s3)
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def presigned(own_server: None, moto_s3: Any) -> Iterator[Server]:
    server = s3_server(moto_s3, presign="1", presign_ttl="120")
    try:
        yield server
    finally:
        stop_server(server)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (300, 200), (0, 200, 0, 100)).save(out, "PNG")
    return out.getvalue()


def upload(server: Server, name: str, data: bytes, content_type: str) -> dict[str, Any]:
    with server.client(master=True) as master:
        answer = master.post(f"/files/{name}", content=data, headers={"Content-Type": content_type})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_through_bastion(proxied: Server) -> None:
    data = bytes(range(256)) * 40_000  # 10 MB: a multipart upload
    stored = upload(proxied, "blob.bin", data, "application/octet-stream")
    whole = httpx.get(stored["url"])
    assert whole.status_code == 200 and whole.content == data
    part = httpx.get(stored["url"], headers={"Range": "bytes=5242870-5242889"})
    assert part.status_code == 206 and part.content == data[5242870:5242890]
    image = upload(proxied, "leaf.png", png(), "image/png")
    thumb = httpx.get(image["url"], params={"thumb": "30x30", "fit": "cover"})
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (30, 30)
    with proxied.client(master=True) as master:
        assert master.delete(f"/files/{image['name']}").status_code == 200
    assert httpx.get(image["url"], params={"thumb": "30x30", "fit": "cover"}).status_code == 404


def test_presigned_redirects(presigned: Server) -> None:
    stored = upload(presigned, "hello.txt", b"hello from the bucket", "text/plain")
    answer = httpx.get(stored["url"])
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert "X-Amz-Signature=" in location and "X-Amz-Expires=120" in location
    assert httpx.get(location).content == b"hello from the bucket"
    image = upload(presigned, "leaf.png", png(), "image/png")
    thumb = httpx.get(image["url"], params={"thumb": "20"}, follow_redirects=True)
    assert thumb.status_code == 200 and Image.open(io.BytesIO(thumb.content)).size == (20, 13)
