"""Thumbnails of stored images (``GET /files/:appId/:name?thumb=200x200&fit=cover``), which Parse lacks.

A thumbnail is made once with Pillow and stored in the same backend as the original under a derived
name, ``<name>~thumb-<W>x<H>-<fit>.<jpg|png>``: a later request finds it there and it is served like
any file. ``~thumb-`` cannot follow the 32 random hex digits that start every uploaded name in
another file's name, so ``names(thumbnail_prefix(name))`` lists exactly the thumbnails of ``name``
(deleted with it) and ``thumbnail_parent`` tells orphan cleanup whose thumbnail a name is.

Sizes: ``WxH`` or ``N`` (a square box), each side 1 to MAX_SIDE pixels. Fits: ``contain`` (alias
``fit``, the default) scales the image down to fit inside the box, keeping its proportions;
``cover`` (alias ``crop``) scales it down to cover the box and crops the middle to exactly WxH;
``fill`` stretches it to exactly WxH. Images are never scaled up. The output is PNG when the image
has transparency, else JPEG; EXIF orientation is applied, metadata (EXIF, GPS) is not copied.

Hostile input: only JPEG, PNG, GIF, WebP, BMP and TIFF are opened (never Pillow's other decoders);
the source may be at most MAX_SOURCE_BYTES and MAX_SOURCE_PIXELS (checked from the header, before
anything is decoded), JPEGs are decoded at a reduced scale when the thumbnail is small, and at most
MAX_CONCURRENT thumbnails are made at once per process, which bounds the memory they take.
"""

from __future__ import annotations

import asyncio
import io
import re
import tempfile
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from bastion.errors import Code, ParseError
from bastion.ports.files import CHUNK_SIZE, FileInfo, FilesAdapter

MAX_SIDE = 2048
MAX_SOURCE_BYTES = 50 * 1024 * 1024
MAX_SOURCE_PIXELS = 50_000_000  # e.g. 8660 x 5773; JPEGs decode at a fraction of that
MAX_CONCURRENT = 2
JPEG_QUALITY = 85
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

THUMB_MARK = "~thumb-"
FITS = {"contain": "contain", "fit": "contain", "cover": "cover", "crop": "cover", "fill": "fill"}
_SPEC = re.compile(r"(\d{1,5})(?:x(\d{1,5}))?")
_DERIVED = re.compile(r"(.+)~thumb-\d{1,5}x\d{1,5}-(?:contain|cover|fill)\.(?:jpg|png)")

# Pillow's own guard stays on as a second line, past ours (it warns past this, raises past twice this).
Image.MAX_IMAGE_PIXELS = 2 * MAX_SOURCE_PIXELS

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_making: dict[tuple[int, str], asyncio.Future[FileInfo]] = {}  # thumbnails being made in this process


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    width: int
    height: int
    fit: str  # contain | cover | fill

    def name_for(self, name: str, alpha: bool) -> str:
        return f"{name}{THUMB_MARK}{self.width}x{self.height}-{self.fit}.{'png' if alpha else 'jpg'}"


def parse_spec(spec: str | None, fit: str | None = None) -> ThumbSpec:
    """``200x200`` / ``200`` and a fit mode, or ParseError 162 saying what is accepted."""
    match = _SPEC.fullmatch((spec or "").strip().lower())
    if not match:
        raise ParseError(Code.INVALID_VALUE, f"Invalid thumbnail size {str(spec)[:40]!r}: use WIDTHxHEIGHT "
                                             f"(e.g. 200x200) or one number for a square, up to {MAX_SIDE}.")
    width = int(match.group(1))
    height = int(match.group(2) or width)
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ParseError(Code.INVALID_VALUE, f"Invalid thumbnail size {spec!r}: each side must be 1 to "
                                             f"{MAX_SIDE} pixels.")
    mode = FITS.get((fit or "contain").strip().lower())
    if mode is None:
        raise ParseError(Code.INVALID_VALUE, f"Invalid thumbnail fit {str(fit)[:40]!r}: use contain (or fit), "
                                             "cover (or crop) or fill.")
    return ThumbSpec(width, height, mode)


def thumbnail_prefix(name: str) -> str:
    """What every thumbnail name of ``name`` starts with."""
    return name + THUMB_MARK


def thumbnail_parent(name: str) -> str | None:
    """The file ``name`` is a thumbnail of, or None when it is no thumbnail name."""
    match = _DERIVED.fullmatch(name)
    return match.group(1) if match else None


async def delete_thumbnails(files: FilesAdapter, name: str) -> int:
    """Delete every stored thumbnail of ``name`` (when the original goes); how many there were."""
    found = [derived async for derived in files.names(thumbnail_prefix(name)) if thumbnail_parent(derived) == name]
    for derived in found:
        await files.delete(derived)
    return len(found)


async def thumbnail(files: FilesAdapter, name: str, spec: str, fit: str | None) -> FileInfo:
    """The stored thumbnail of ``name`` for ``spec``/``fit``, made now if it is not there yet."""
    wanted = parse_spec(spec, fit)
    if thumbnail_parent(name) is not None:
        raise ParseError(Code.INVALID_IMAGE_DATA, "A thumbnail has no thumbnails of its own.")
    found = await _stored(files, name, wanted)
    if found is not None:
        return found
    key = (id(files), f"{name}|{wanted.width}x{wanted.height}|{wanted.fit}")
    making = _making.get(key)
    if making is None:
        # A task of its own: a client that goes away does not stop it, and every concurrent request
        # for the same thumbnail waits on this one making of it instead of making another.
        making = asyncio.ensure_future(_make(files, name, wanted))
        _making[key] = making
        making.add_done_callback(lambda task: (_making.pop(key, None),
                                               task.cancelled() or task.exception()))
    return await asyncio.shield(making)


async def _stored(files: FilesAdapter, name: str, wanted: ThumbSpec) -> FileInfo | None:
    # Both names are tried: a thumbnail's format (and so its name) depends on the image.
    for alpha in (False, True):
        found = await files.info(wanted.name_for(name, alpha))
        if found is not None:
            return found
    return None


async def _make(files: FilesAdapter, name: str, wanted: ThumbSpec) -> FileInfo:
    # Looked for again: a making that finished while this request was looking is not repeated.
    found = await _stored(files, name, wanted)
    if found is not None:
        return found
    source = await files.info(name)
    if source is None:
        raise ParseError(Code.OBJECT_NOT_FOUND, "File not found.")
    if source.size > MAX_SOURCE_BYTES:
        raise ParseError(Code.INVALID_IMAGE_DATA, f"The image is too large for a thumbnail ({source.size} bytes; "
                                                  f"the limit is {MAX_SOURCE_BYTES}).")
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop) or _slots.setdefault(loop, asyncio.Semaphore(MAX_CONCURRENT))
    async with slots:
        # Spooled: small images stay in memory, big ones go to a temporary file, never both in full.
        with tempfile.SpooledTemporaryFile(max_size=4 * 1024 * 1024) as spool:
            async for chunk in files.read(name):
                spool.write(chunk)
            spool.seek(0)
            data, alpha = await asyncio.to_thread(_render, spool, wanted)
    derived = wanted.name_for(name, alpha)
    content_type = "image/png" if alpha else "image/jpeg"
    try:
        return await files.save(derived, _chunks(data), content_type,
                                metadata={"thumbnailOf": name, "thumb": f"{wanted.width}x{wanted.height}",
                                          "fit": wanted.fit})
    except Exception:
        # Another process may have stored the same thumbnail first: its bytes are as good as ours.
        existing = await files.info(derived)
        if existing is not None:
            return existing
        raise


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), CHUNK_SIZE):
        yield data[start:start + CHUNK_SIZE]


def _render(source: IO[bytes], wanted: ThumbSpec) -> tuple[bytes, bool]:
    """The thumbnail's bytes and whether it is a PNG (the image has transparency). Runs in a thread."""
    try:
        image = Image.open(source, formats=FORMATS)  # reads the header only
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ParseError(Code.INVALID_IMAGE_DATA, "The file is not an image a thumbnail can be made of "
                                                  "(JPEG, PNG, GIF, WebP, BMP or TIFF).") from None
    except Image.DecompressionBombError:
        raise _too_many_pixels() from None
    with image:
        width, height = image.size
        if width < 1 or height < 1 or width * height > MAX_SOURCE_PIXELS:
            raise _too_many_pixels()
        try:
            orientation = image.getexif().get(_ORIENTATION, 1)
            needed = _draft_size(image.size, wanted)
            if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale when that is still big enough
                image.draft("RGB", needed)
            image.load()
            alpha = _has_alpha(image)
            # Shrunk by a whole factor first (cheap), so the copies below are small ones.
            pixels: Image.Image = image if image.mode == ("RGBA" if alpha else "RGB") else \
                image.convert("RGBA" if alpha else "RGB")
            factor = min(pixels.width // needed[0], pixels.height // needed[1])
            if factor >= 2:
                pixels = pixels.reduce(factor)
            turn = _TRANSPOSE.get(orientation)
            if turn is not None:  # upright as the camera was held
                pixels = pixels.transpose(turn)
            result = _fit(pixels, wanted)
            out = io.BytesIO()
            if alpha:
                result.save(out, "PNG", optimize=True)
            else:
                result.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
        except Image.DecompressionBombError:
            raise _too_many_pixels() from None
        except (OSError, SyntaxError, ValueError, EOFError):
            raise ParseError(Code.INVALID_IMAGE_DATA, "The image is damaged and no thumbnail can be made of it.") \
                from None
    return out.getvalue(), alpha


_ORIENTATION = 0x0112  # the EXIF tag
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def _too_many_pixels() -> ParseError:
    return ParseError(Code.INVALID_IMAGE_DATA, f"The image has too many pixels for a thumbnail (the limit is "
                                               f"{MAX_SOURCE_PIXELS}).")


def _draft_size(size: tuple[int, int], wanted: ThumbSpec) -> tuple[int, int]:
    """A decode size that still gives the thumbnail every pixel it needs, whichever way the EXIF
    orientation turns the image (so it is sized for the larger side of the box in both directions)."""
    width, height = size
    side = max(wanted.width, wanted.height)
    scale = min(1.0, max(side / width, side / height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info) or (
        image.mode in ("RGB", "L") and "transparency" in image.info)


def _fit(image: Image.Image, wanted: ThumbSpec) -> Image.Image:
    width, height = image.size
    if wanted.fit == "fill":
        size = (min(wanted.width, width), min(wanted.height, height))
        return image.resize(size, Image.Resampling.LANCZOS)
    if wanted.fit == "cover":
        box = (min(wanted.width, width), min(wanted.height, height))
        return ImageOps.fit(image, box, Image.Resampling.LANCZOS)
    copy = image.copy()
    copy.thumbnail((wanted.width, wanted.height), Image.Resampling.LANCZOS)
    return copy
