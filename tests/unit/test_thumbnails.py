"""Thumbnails (bastion/domain/thumbnails.py) made from files in a real backend: a local directory
and S3 (moto in server mode, over HTTP)."""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bastion.domain import thumbnails
from bastion.domain.thumbnails import delete_thumbnails, parse_spec, thumbnail, thumbnail_parent
from bastion.errors import ParseError
from bastion.ports.files import FileInfo, FilesAdapter
from tests.contract.s3_server import FAKE_CREDENTIALS

NAME = "0123456789abcdef0123456789abcdef_photo.jpg"


class Counting(FilesAdapter):
    """A backend that counts the saves made through it (how often a thumbnail was made)."""

    def __init__(self, inner: FilesAdapter) -> None:
        self.inner = inner
        self.saves: list[str] = []

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def save(self, name: str, chunks: AsyncIterator[bytes], content_type: str, **options: Any) -> FileInfo:
        self.saves.append(name)
        return await self.inner.save(name, chunks, content_type, **options)

    async def info(self, name: str) -> FileInfo | None:
        return await self.inner.info(name)

    def read(self, name: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.read(name, start, end)

    async def delete(self, name: str) -> bool:
        return await self.inner.delete(name)

    def names(self, prefix: str = "") -> AsyncIterator[str]:
        return self.inner.names(prefix)


@pytest.fixture(params=["local", "s3"])
async def files(request: pytest.FixtureRequest, tmp_path: Path, moto_s3: Any) -> AsyncIterator[Counting]:
    inner: FilesAdapter
    if request.param == "local":
        from bastion.adapters.files.local import LocalFiles

        inner = LocalFiles(tmp_path / "files")
    else:
        from bastion.adapters.files.s3 import S3Files

        if isinstance(moto_s3, str):
            pytest.skip(moto_s3)
        inner = S3Files(moto_s3.new_bucket(), endpoint_url=moto_s3.endpoint, region="us-east-1",
                        access_key=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        secret_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
    wrapped = Counting(inner)
    await wrapped.open()
    try:
        yield wrapped
    finally:
        await wrapped.close()


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def store(files: FilesAdapter, name: str, data: bytes, content_type: str = "image/jpeg") -> None:
    await files.save(name, _one(data), content_type)


async def load(files: FilesAdapter, name: str) -> bytes:
    return b"".join([chunk async for chunk in files.read(name)])


def image_bytes(size: tuple[int, int], mode: str = "RGB", fmt: str = "JPEG", color: Any = (200, 30, 30),
                **save: Any) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, fmt, **save)
    return out.getvalue()


async def open_thumb(files: FilesAdapter, info: FileInfo) -> Image.Image:
    image = Image.open(io.BytesIO(await load(files, info.name)))
    image.load()
    return image


async def test_contain_is_a_jpeg_inside_the_box_with_the_proportions_kept(files: Counting) -> None:
    await store(files, NAME, image_bytes((800, 600)))
    info = await thumbnail(files, NAME, "200x200", None)
    assert info.name == NAME + "~thumb-200x200-contain.jpg"
    assert info.content_type == "image/jpeg"
    image = await open_thumb(files, info)
    assert (image.format, image.size) == ("JPEG", (200, 150))
    assert info.size == len(await load(files, info.name))
    assert thumbnail_parent(info.name) == NAME
    assert {name async for name in files.names()} == {NAME, info.name}


async def test_cover_crops_to_the_exact_box_and_alpha_gives_a_png(files: Counting) -> None:
    name = "0123456789abcdef0123456789abcdef_logo.png"
    await store(files, name, image_bytes((400, 100), "RGBA", "PNG", (0, 0, 255, 128)), "image/png")
    info = await thumbnail(files, name, "50x50", "crop")  # crop is cover's alias
    assert info.name == name + "~thumb-50x50-cover.png"
    assert info.content_type == "image/png"
    image = await open_thumb(files, info)
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (50, 50))
    assert image.getpixel((25, 25)) == (0, 0, 255, 128)


async def test_fill_stretches_and_nothing_is_scaled_up(files: Counting) -> None:
    await store(files, NAME, image_bytes((300, 100)))
    stretched = await open_thumb(files, await thumbnail(files, NAME, "90x90", "fill"))
    assert stretched.size == (90, 90)
    small = "0123456789abcdef0123456789abcdef_small.jpg"
    await store(files, small, image_bytes((50, 40)))
    for fit in ("contain", "cover", "fill"):
        assert (await open_thumb(files, await thumbnail(files, small, "400", fit))).size == (50, 40)


async def test_exif_orientation_is_applied(files: Counting) -> None:
    # A landscape 300x100 picture the camera says to turn a quarter (orientation 6): it is portrait.
    exif = Image.Exif()
    exif[0x0112] = 6
    await store(files, NAME, image_bytes((300, 100), exif=exif.tobytes()))
    image = await open_thumb(files, await thumbnail(files, NAME, "150x150", "contain"))
    assert image.size == (50, 150)
    assert not image.getexif().get(0x0112)  # the metadata is not carried over


async def test_a_gif_with_transparency_gives_a_png_of_its_first_frame(files: Counting) -> None:
    name = "0123456789abcdef0123456789abcdef_anim.gif"
    frames = [Image.new("P", (64, 64), index) for index in (1, 2)]
    frames[0].paste(0, (0, 0, 32, 64))  # the left half transparent
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], transparency=0, optimize=False)
    await store(files, name, out.getvalue(), "image/gif")
    info = await thumbnail(files, name, "32x32", None)
    assert info.content_type == "image/png"
    image = await open_thumb(files, info)
    assert (image.size, image.mode) == ((32, 32), "RGBA")
    assert image.getpixel((2, 16))[3] == 0 and image.getpixel((30, 16))[3] == 255


async def test_made_once_then_reused(files: Counting) -> None:
    await store(files, NAME, image_bytes((640, 480)))
    first = await thumbnail(files, NAME, "120x120", "fit")
    files.saves.clear()
    again = await thumbnail(files, NAME, "120x120", "contain")  # fit and contain are one thumbnail
    assert again == first
    await files.delete(NAME)  # the stored thumbnail still answers: it is not made again
    assert await thumbnail(files, NAME, "120x120", None) == first
    assert files.saves == []


async def test_concurrent_first_requests_make_it_once(files: Counting) -> None:
    await store(files, NAME, image_bytes((1600, 1200)))
    files.saves.clear()
    results = await asyncio.gather(*(thumbnail(files, NAME, "300x300", "cover") for _ in range(8)))
    assert files.saves == [NAME + "~thumb-300x300-cover.jpg"]
    assert len({result.name for result in results}) == 1
    assert (await open_thumb(files, results[0])).size == (300, 300)


async def test_not_an_image(files: Counting) -> None:
    name = "0123456789abcdef0123456789abcdef_notes.txt"
    await store(files, name, b"hello, this is text\n" * 10, "text/plain")
    with pytest.raises(ParseError) as caught:
        await thumbnail(files, name, "100x100", None)
    assert caught.value.code == 143 and caught.value.status == 400
    assert "not an image" in caught.value.message
    assert [n async for n in files.names()] == [name]  # nothing stored


async def test_a_format_outside_the_list_is_refused(files: Counting) -> None:
    # Pillow reads PPM, but the thumbnailer opens only common web and photo formats.
    await store(files, NAME, image_bytes((10, 10), fmt="PPM"))
    with pytest.raises(ParseError) as caught:
        await thumbnail(files, NAME, "5x5", None)
    assert caught.value.code == 143


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's header)."""
    data = bytearray(image_bytes((1, 1), fmt="PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


async def test_decompression_bombs_are_refused_from_the_header(files: Counting) -> None:
    for width, height in ((8_000, 8_000), (60_000, 60_000)):  # above the cap, and above Pillow's own
        name = f"0123456789abcdef0123456789abcdef_bomb{width}.png"
        await store(files, name, _png_claiming(width, height), "image/png")
        with pytest.raises(ParseError) as caught:
            await thumbnail(files, name, "100x100", None)
        assert caught.value.code == 143
        assert "too many pixels" in caught.value.message


async def test_a_source_over_the_byte_limit_is_refused(files: Counting, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(thumbnails, "MAX_SOURCE_BYTES", 1000)
    await store(files, NAME, image_bytes((400, 400), quality=95) + b"\0" * 1000)
    with pytest.raises(ParseError) as caught:
        await thumbnail(files, NAME, "100x100", None)
    assert caught.value.code == 143 and "too large" in caught.value.message


async def test_missing_file_and_thumbnails_of_thumbnails(files: Counting) -> None:
    with pytest.raises(ParseError) as caught:
        await thumbnail(files, NAME, "100x100", None)
    assert (caught.value.code, caught.value.status) == (101, 404)
    await store(files, NAME, image_bytes((100, 100)))
    info = await thumbnail(files, NAME, "10x10", None)
    with pytest.raises(ParseError) as caught:
        await thumbnail(files, info.name, "5x5", None)
    assert caught.value.code == 143


async def test_delete_thumbnails_removes_every_size_and_only_those(files: Counting) -> None:
    other = "fedcba9876543210fedcba9876543210_other.jpg"
    await store(files, NAME, image_bytes((200, 200)))
    await store(files, other, image_bytes((200, 200)))
    for spec in ("10", "20x30", "40x40"):
        await thumbnail(files, NAME, spec, "cover")
    kept = await thumbnail(files, other, "10", None)
    assert await delete_thumbnails(files, NAME) == 3
    assert {name async for name in files.names()} == {NAME, other, kept.name}


@pytest.mark.parametrize("spec,fit", [("", None), ("abc", None), ("0x10", None), ("10x0", None),
                                      ("2049x10", None), ("10x10x10", None), ("-5", None), ("10x10", "zoom")])
def test_bad_specs_say_what_is_accepted(spec: str, fit: str | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_spec(spec, fit)
    assert caught.value.code == 162 and caught.value.status == 400


def test_spec_forms() -> None:
    assert parse_spec("200") == thumbnails.ThumbSpec(200, 200, "contain")
    assert parse_spec(" 2048X1 ", "CROP") == thumbnails.ThumbSpec(2048, 1, "cover")
    assert thumbnail_parent("a~thumb-10x10-cover.png") == "a"
    assert thumbnail_parent("a~thumb-10x10-zoom.png") is None
    assert thumbnail_parent(NAME) is None
