"""Thumbnails over HTTP: ``GET /files/:appId/:name?thumb=WxH&fit=…`` on both databases."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from tests.conftest import Server


def upload(master: httpx.Client, name: str, data: bytes, content_type: str) -> dict[str, Any]:
    answer = master.post(f"/files/{name}", content=data, headers={"Content-Type": content_type})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (250, 120, 0)).save(out, "JPEG")
    return out.getvalue()


def test_a_thumbnail_is_served_like_a_file(server: Server, master: httpx.Client) -> None:
    stored = upload(master, "sunset.jpg", jpeg((1200, 800)), "image/jpeg")
    answer = httpx.get(stored["url"], params={"thumb": "300x300"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/jpeg"
    assert int(answer.headers["content-length"]) == len(answer.content)
    image = Image.open(io.BytesIO(answer.content))
    assert (image.format, image.size) == ("JPEG", (300, 200))
    cropped = httpx.get(stored["url"], params={"thumb": "100x100", "fit": "cover"})
    assert Image.open(io.BytesIO(cropped.content)).size == (100, 100)
    # Served from the stored thumbnail the second time: the same bytes, ranges work on it.
    assert httpx.get(stored["url"], params={"thumb": "300x300"}).content == answer.content
    part = httpx.get(stored["url"], params={"thumb": "300x300"}, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == answer.content[:10]
    # The original is untouched.
    assert httpx.get(stored["url"]).content == jpeg((1200, 800))


def test_thumbnail_errors(server: Server, master: httpx.Client) -> None:
    text = upload(master, "notes.txt", b"plain words\n", "text/plain")
    answer = httpx.get(text["url"], params={"thumb": "100x100"})
    assert answer.status_code == 400
    assert answer.json()["code"] == 143
    photo = upload(master, "p.jpg", jpeg((40, 40)), "image/jpeg")
    for params in ({"thumb": "huge"}, {"thumb": "0x5"}, {"thumb": "9999x10"}, {"thumb": "10", "fit": "zoom"}):
        bad = httpx.get(photo["url"], params=params)
        assert bad.status_code == 400 and bad.json()["code"] == 162, (params, bad.text)
    missing = httpx.get(photo["url"].replace("_p.jpg", "_gone.jpg"), params={"thumb": "10"})
    assert missing.status_code == 404


def test_deleting_the_file_deletes_its_thumbnails(server: Server, master: httpx.Client) -> None:
    stored = upload(master, "gone.jpg", jpeg((100, 100)), "image/jpeg")
    assert httpx.get(stored["url"], params={"thumb": "10"}).status_code == 200
    assert master.delete(f"/files/{stored['name']}").status_code == 200
    assert httpx.get(stored["url"], params={"thumb": "10"}).status_code == 404
    thumb_url = stored["url"] + "~thumb-10x10-contain.jpg"
    assert httpx.get(thumb_url).status_code == 404
