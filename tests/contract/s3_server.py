"""A real S3 endpoint for tests: moto in server mode, in its own process on a free loopback port.

Tests reach it through boto3 over HTTP exactly as they would reach AWS or MinIO, so the S3 backend's
requests, multipart uploads, ranges and listings are the real wire protocol. ``moto_unavailable``
says why the S3 runs skip (moto[server] not installed); each test takes a fresh bucket.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# moto accepts any credentials; fixed fake ones keep boto3 from searching the machine for real ones.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bastion-test", "AWS_SECRET_ACCESS_KEY": "bastion-test-secret",
                    "AWS_DEFAULT_REGION": "us-east-1"}


def moto_unavailable() -> str | None:
    """None when moto's server and boto3 can be imported, else the reason they cannot."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as error:
        return f"moto[server] or boto3 is not installed ({error})"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoS3:
    endpoint: str  # http://127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])

    def new_bucket(self) -> str:
        name = "bastion-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def files_url(self, bucket: str, prefix: str = "", **params: str) -> str:
        """The ``--files`` URL of a bucket on this server."""
        query = "&".join(f"{key}={value}" for key, value in {"endpoint": self.endpoint,
                                                              "region": "us-east-1", **params}.items())
        return f"s3://{bucket}/{prefix}?{query}"


@contextmanager
def moto_s3_server(timeout: float = 30) -> Iterator[MotoS3]:
    """moto's S3 server on 127.0.0.1 (a free port), stopped when the block ends."""
    port = _free_port()
    env = {**os.environ, **FAKE_CREDENTIALS}
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below; moto logs every request, a pipe could fill up
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"moto server exited: {log.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(endpoint + "/moto-api/", timeout=1):
                    break
            except urllib.error.HTTPError:
                break  # an answer of any kind: it is listening
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        yield MotoS3(endpoint, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
