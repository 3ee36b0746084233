"""Artifacts with S3 storage: a moto server spoken to over real HTTP (docs/architecture.md, "Registries" and "Tests").

What is in the bucket is checked with boto3, independently of the s3fs the library uses.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import botocore.exceptions
import pytest

import graph.records
import lineage as ln
from tests.s3 import S3Bucket

PREFIX = "prefix"
MiB = 1024**2


def md5_b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.md5(data).digest()).decode().rstrip("=")[:22]


def etag_b64(etag: str) -> str:
    """lamindb's rule for an ETag: the hex digest (before any "-parts") as url-safe base64."""
    hex_digest = etag.strip('"').split("-")[0]
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).decode().rstrip("=")[:22]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def keys_under(bucket: S3Bucket, prefix: str) -> list[str]:
    listing = bucket.client.list_objects_v2(Bucket=bucket.name, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def head(bucket: S3Bucket, key: str) -> dict | None:
    try:
        return bucket.client.head_object(Bucket=bucket.name, Key=key)
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def storage_root_of(uid: str) -> list[str]:
    rows = ln.cypher(
        "MATCH (:Artifact {uid: $uid})-[:STORED_IN]->(s:Storage) RETURN s.root AS root", uid=uid
    )
    return list(rows["root"])


@pytest.fixture
def s3_storage(storage: Path, s3_bucket: S3Bucket) -> S3Bucket:
    """The storage fixture's clean graph, with `ln.settings.storage` on the test bucket."""
    ln.settings.storage = f"{s3_bucket.uri}/{PREFIX}"
    ln.settings.storage_options = s3_bucket.storage_options
    return s3_bucket


def test_local_file_is_uploaded(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    content = b"gene,count\nA,1\nB,2\n"
    src = tmp_path / "counts.csv"
    src.write_bytes(content)

    artifact = ln.Artifact(src, key="raw/counts.csv").save()
    key = f"{PREFIX}/.lineage/{artifact.uid}.csv"
    assert artifact.storage_path == f"{bucket.uri}/{key}"
    meta = head(bucket, key)
    assert meta is not None, f"{key} not in the bucket: {keys_under(bucket, '')}"
    assert meta["ContentLength"] == len(content)
    body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
    assert body == content
    assert keys_under(bucket, "") == [key]

    assert artifact.hash == md5_b64(content)
    assert artifact.hash_type == "md5"
    assert artifact.size == len(content)
    # The uploaded object's ETag gives the same hash, so S3 and local agree on identity.
    assert etag_b64(meta["ETag"]) == artifact.hash

    assert storage_root_of(artifact.uid) == [f"{bucket.uri}/{PREFIX}"]
    stored = ln.cypher("MATCH (a:Artifact {uid: $uid}) RETURN a", uid=artifact.uid).iloc[0]["a"]
    assert stored["storage_path"] == f"{bucket.uri}/{key}"
    assert stored["hash"] == md5_b64(content)

    # Registering the stored object itself finds the same record.
    again = ln.Artifact(artifact.storage_path)
    assert again.uid == artifact.uid


def test_existing_object_is_registered_in_place(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    content = b"sample,value\ns1,0.5\n"
    bucket.client.put_object(Bucket=bucket.name, Key="external/data.csv", Body=content)
    uri = f"{bucket.uri}/external/data.csv"

    artifact = ln.Artifact(uri, key="external/data.csv", description="theirs").save()
    assert artifact.storage_path == uri
    assert artifact.suffix == ".csv"
    assert artifact.size == len(content)
    assert keys_under(bucket, "") == ["external/data.csv"]  # no copy
    assert storage_root_of(artifact.uid) == [bucket.uri]

    etag = head(bucket, "external/data.csv")["ETag"]
    assert artifact.hash == etag_b64(etag)
    assert artifact.hash_type == "md5"
    # A small object's ETag is its md5: the same hash as the same bytes on a local disk.
    local = tmp_path / "same.csv"
    local.write_bytes(content)
    assert artifact.hash == md5_b64(content)
    assert ln.Artifact(local).uid == artifact.uid

    stored = ln.cypher("MATCH (a:Artifact {uid: $uid}) RETURN a", uid=artifact.uid).iloc[0]["a"]
    assert stored["storage_path"] == uri
    assert stored["hash"] == artifact.hash


def test_multipart_object_hash_type(s3_storage: S3Bucket) -> None:
    bucket = s3_storage
    key = "external/big.bin"
    parts = [b"\x01" * (5 * MiB), b"\x02" * (5 * MiB)]
    upload = bucket.client.create_multipart_upload(Bucket=bucket.name, Key=key)
    etags = []
    for number, body in enumerate(parts, start=1):
        reply = bucket.client.upload_part(
            Bucket=bucket.name, Key=key, PartNumber=number, UploadId=upload["UploadId"], Body=body
        )
        etags.append({"PartNumber": number, "ETag": reply["ETag"]})
    bucket.client.complete_multipart_upload(
        Bucket=bucket.name, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": etags}
    )
    etag = head(bucket, key)["ETag"]
    assert etag.strip('"').endswith("-2")

    artifact = ln.Artifact(f"{bucket.uri}/{key}", key="big.bin").save()
    assert artifact.hash_type == "md5-2"
    assert artifact.hash == etag_b64(etag)
    assert artifact.size == 10 * MiB
    assert artifact.storage_path == f"{bucket.uri}/{key}"
    assert keys_under(bucket, f"{PREFIX}/") == []


def test_path_is_a_upath(s3_storage: S3Bucket, tmp_path: Path) -> None:
    from upath import UPath

    bucket = s3_storage
    src = tmp_path / "x.txt"
    src.write_bytes(b"read me back")
    managed = ln.Artifact(src, key="x.txt").save()
    assert isinstance(managed.path, UPath)
    assert str(managed.path).endswith(f"{PREFIX}/.lineage/{managed.uid}.txt")
    assert managed.path.read_bytes() == b"read me back"

    bucket.client.put_object(Bucket=bucket.name, Key="ext/y.txt", Body=b"in place")
    in_place = ln.Artifact(f"{bucket.uri}/ext/y.txt", key="y.txt").save()
    assert isinstance(in_place.path, UPath)
    assert in_place.path.read_bytes() == b"in place"

    # A record fetched from the graph finds its bytes too.
    assert ln.Artifact.get(managed.uid).path.read_bytes() == b"read me back"


def test_permanent_delete_removes_managed_copy_only(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    src = tmp_path / "x.txt"
    src.write_bytes(b"to be deleted")
    managed = ln.Artifact(src, key="x.txt").save()
    key = f"{PREFIX}/.lineage/{managed.uid}.txt"
    bucket.client.put_object(Bucket=bucket.name, Key="ext/keep.txt", Body=b"keep me")
    in_place = ln.Artifact(f"{bucket.uri}/ext/keep.txt", key="keep.txt").save()

    managed.delete()
    assert head(bucket, key) is not None  # the trash keeps the object
    managed.delete()
    assert head(bucket, key) is None
    in_place.delete(permanent=True)
    assert head(bucket, "ext/keep.txt") is not None
    assert ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0] == 0
    assert keys_under(bucket, "") == ["ext/keep.txt"]


def test_failed_node_write_removes_uploaded_object(
    s3_storage: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_storage
    src = tmp_path / "x.txt"
    src.write_bytes(b"never registered")
    artifact = ln.Artifact(src, key="x.txt")
    uploaded: list[list[str]] = []

    real_take_ids = graph.records._take_ids

    def fail(tx: object, label: str, n: int) -> list[int]:
        if label != "Artifact":  # the Storage node is made first, in its own transaction
            return real_take_ids(tx, label, n)
        uploaded.append(keys_under(bucket, ""))  # the object is there while the node is written
        raise RuntimeError("injected failure in create_record")

    monkeypatch.setattr(graph.records, "_take_ids", fail)  # inside the transaction
    with pytest.raises(RuntimeError, match="injected"):
        artifact.save()
    assert uploaded == [[f"{PREFIX}/.lineage/{artifact.uid}.txt"]]
    assert keys_under(bucket, "") == []
    assert ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0] == 0


def test_object_under_the_storage_root_is_stored_in_that_root(s3_storage: S3Bucket) -> None:
    """As for local files: an object inside the configured root `s3://bucket/prefix` is
    registered in place and belongs to that root's Storage, like lamindb's storage lookup."""
    bucket = s3_storage
    key = f"{PREFIX}/inbox/x.csv"
    bucket.client.put_object(Bucket=bucket.name, Key=key, Body=b"a\n1\n")
    artifact = ln.Artifact(f"{bucket.uri}/{key}", key="inbox/x.csv").save()
    assert artifact.storage_path == f"{bucket.uri}/{key}"
    assert keys_under(bucket, "") == [key]
    assert storage_root_of(artifact.uid) == [f"{bucket.uri}/{PREFIX}"]


def test_bulk_save_uploads_every_file(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    paths = []
    for i in range(5):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(f"bulk {i}".encode())
        paths.append(path)
    artifacts = ln.save([ln.Artifact(p, key=p.name) for p in paths])
    expected = sorted(f"{PREFIX}/.lineage/{a.uid}.txt" for a in artifacts)
    assert keys_under(bucket, "") == expected
    for a, p in zip(artifacts, paths):
        key = a.storage_path[len(bucket.uri) + 1 :]
        body = bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()
        assert body == p.read_bytes()
    rows = ln.cypher(
        "MATCH (a:Artifact)-[:STORED_IN]->(s:Storage) RETURN s.root AS root, count(a) AS n"
    )
    assert list(zip(rows["root"], rows["n"])) == [(f"{bucket.uri}/{PREFIX}", 5)]


def test_bulk_save_failure_removes_uploaded_objects(s3_storage: S3Bucket, tmp_path: Path) -> None:
    bucket = s3_storage
    paths = []
    for i in range(4):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(f"bulk {i}".encode())
        paths.append(path)
    artifacts = [ln.Artifact(p, key=p.name) for p in paths]
    paths[2].unlink()  # two objects are uploaded before the third copy fails
    with pytest.raises(FileNotFoundError):
        ln.save(artifacts)
    assert keys_under(bucket, "") == []
    assert ln.cypher("MATCH (a:Artifact) RETURN count(a) AS n")["n"][0] == 0


def test_get_by_path_finds_s3_artifacts(s3_storage: S3Bucket, tmp_path: Path) -> None:
    # lamindb's `Artifact.get(path=...)`: a copy lineage made by its `.lineage/<uid><suffix>`
    # URI, an object registered in place by its own URI.
    bucket = s3_storage
    src = tmp_path / "counts.csv"
    src.write_bytes(b"gene,count\nA,1\n")
    copied = ln.Artifact(src, key="raw/counts.csv").save()
    bucket.client.put_object(Bucket=bucket.name, Key="external/data.csv", Body=b"s,v\ns1,1\n")
    in_place = ln.Artifact(f"{bucket.uri}/external/data.csv", key="external/data.csv").save()
    assert ln.Artifact.get(path=copied.storage_path) == copied
    assert ln.Artifact.get(path=copied.path) == copied  # the UPath artifact.path gives
    assert ln.Artifact.get(path=f"{bucket.uri}/external/data.csv") == in_place
    with pytest.raises(ln.errors.DoesNotExist, match=r"other\.csv"):
        ln.Artifact.get(path=f"{bucket.uri}/external/other.csv")


def test_replace_swaps_the_object_and_restores_it_on_failure(
    s3_storage: S3Bucket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = s3_storage
    artifact = ln.Artifact(write(tmp_path / "a.txt", b"first"), key="a.txt").save()
    key = f"{PREFIX}/.lineage/{artifact.uid}.txt"

    def body() -> bytes:
        return bucket.client.get_object(Bucket=bucket.name, Key=key)["Body"].read()

    def fail(*args: object, **kwargs: object) -> None:  # inside the transaction, object swapped
        assert body() == b"second"
        raise RuntimeError("injected failure in update")

    real = graph.records._delete_edges
    monkeypatch.setattr(graph.records, "_delete_edges", fail)
    artifact.replace(write(tmp_path / "b.txt", b"second"))
    with pytest.raises(RuntimeError, match="injected"):
        artifact.save()
    assert body() == b"first" and keys_under(bucket, "") == [key]  # the backup went back
    monkeypatch.setattr(graph.records, "_delete_edges", real)
    artifact.save()
    assert body() == b"second" and keys_under(bucket, "") == [key]
    assert artifact.hash == md5_b64(b"second") == etag_b64(head(bucket, key)["ETag"])
