"""S3 for tests: a real moto server on 127.0.0.1, spoken to over HTTP (docs/architecture.md, "Tests").

Use the fixtures by importing them into a test module (or list this module in the root
conftest's `pytest_plugins`):

    from tests.s3 import s3_bucket, s3_server  # noqa: F401

    def test_put(s3_bucket):
        s3_bucket.client.put_object(Bucket=s3_bucket.name, Key="x.txt", Body=b"a")
        assert loaders.exists(f"{s3_bucket.uri}/x.txt", s3_bucket.storage_options)
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

__all__ = ["S3Bucket", "s3_bucket", "s3_server"]

_FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Real credentials or profiles from the developer's shell must not leak into the fake server.
_CLEARED = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL")


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test server, with what s3fs and boto3 need to reach it."""

    name: str
    endpoint_url: str
    client: Any = field(repr=False)  # a boto3 S3 client bound to the server

    @property
    def uri(self) -> str:
        return f"s3://{self.name}"

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server for the session; yields its endpoint URL "http://127.0.0.1:PORT"."""
    saved = {key: os.environ.get(key) for key in (*_FAKE_CREDENTIALS, *_CLEARED)}
    os.environ.update(_FAKE_CREDENTIALS)
    for key in _CLEARED:
        os.environ.pop(key, None)
    # Port 0: the OS picks a free port when the server binds, so there is no race for it.
    # One werkzeug log line per request would bury a failing test's own output.
    werkzeug = logging.getLogger("werkzeug")
    saved_level = werkzeug.level
    werkzeug.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
        werkzeug.setLevel(saved_level)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[S3Bucket]:
    """A new, uniquely named, empty bucket; emptied and deleted after the test."""
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    name = f"lineage-test-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    try:
        yield S3Bucket(name=name, endpoint_url=s3_server, client=client)
    finally:
        # Free the server's memory: a session may create many buckets with large test files.
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=name):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                client.delete_objects(Bucket=name, Delete={"Objects": keys})
        uploads = client.list_multipart_uploads(Bucket=name).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=name)
