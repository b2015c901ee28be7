"""File storage backends: a local directory, PostgreSQL, S3-compatible object stores."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from bastion.ports.files import FilesAdapter


def open_files(url: str | None, data_dir: str | Path, database_url: str | None = None) -> FilesAdapter:
    """The backend ``--files`` names (not opened yet).

    ``local`` (the default) or ``local:///absolute/dir``: a directory (``<data-dir>/files``);
    ``postgres``: the database of ``--database``, which must then be PostgreSQL;
    ``postgresql://…``: that PostgreSQL database; ``s3://bucket/prefix?endpoint=…&region=…&presign=1``.
    ValueError for anything else."""
    url = (url or "local").strip()
    if url == "local":
        from bastion.adapters.files.local import LocalFiles

        return LocalFiles(Path(data_dir) / "files")
    if url.startswith("local://"):
        from bastion.adapters.files.local import LocalFiles

        path = url[len("local://"):]
        if not path.startswith("/"):
            raise ValueError("--files local://… needs an absolute path, e.g. local:///srv/bastion-files")
        return LocalFiles(path)
    if url == "postgres":
        if not database_url or not database_url.startswith(("postgresql://", "postgres://")):
            raise ValueError("--files postgres keeps files in the PostgreSQL database of --database, "
                             "which is not PostgreSQL; give --files postgresql://… instead")
        url = database_url
    if url.startswith(("postgresql://", "postgres://")):
        from bastion.adapters.files.postgres import PostgresFiles

        return PostgresFiles(url)
    if url.startswith("s3://"):
        return _s3_files(url)
    raise ValueError(f"unsupported --files value: {url.split(':', 1)[0]!r} "
                     "(use local, postgres, postgresql://… or s3://…)")


def _s3_files(url: str) -> FilesAdapter:
    """``s3://bucket/prefix?endpoint=…&region=…&presign=1&presign_ttl=3600``. Credentials are not
    part of the URL: boto3 finds them (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles)."""
    from bastion.adapters.files.s3 import S3Files

    parts = urlsplit(url)
    if not parts.netloc:
        raise ValueError("--files s3://… needs a bucket: s3://bucket/optional/prefix")
    if parts.username or parts.password:
        raise ValueError("--files s3://… takes no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(query) - {"endpoint", "region", "presign", "presign_ttl"}
    if unknown:
        raise ValueError(f"unknown --files s3:// parameter(s): {', '.join(sorted(unknown))}")
    try:
        ttl = int(query.get("presign_ttl", "3600"))
    except ValueError:
        raise ValueError("presign_ttl must be a number of seconds") from None
    return S3Files(parts.netloc, parts.path.strip("/"), endpoint_url=query.get("endpoint"),
                   region=query.get("region"),
                   presigned_urls=query.get("presign", "0").lower() in ("1", "true", "yes", "on"),
                   presign_ttl=ttl)
