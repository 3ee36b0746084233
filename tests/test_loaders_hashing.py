"""lamindb's hashes, byte for byte: known vectors, the large-file rule, collections, S3 ETags."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

import loaders
from loaders.hashing import CHUNK_SIZE, HASH_LENGTH, b16_to_b64, hash_file, hash_from_etag

MIB = 1024**2


def _b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def test_constants_match_lamindb() -> None:
    assert HASH_LENGTH == 22
    assert CHUNK_SIZE == 50 * MIB


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"a", "DMF1ucDxtqgxw5niaXcmYQ"), (b"abc", "kAFQmDzST7DWlj99KOF_cg")],
)
def test_small_file_vectors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(content)
    assert hash_file(path) == (expected, "md5")
    assert hash_file(str(path), file_size=len(content)) == (expected, "md5")
    assert loaders.hash_string(content.decode()) == expected


def test_empty_file_is_md5_of_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert hash_file(path) == (_b64(hashlib.md5(b"").digest())[:22], "md5")


def test_file_of_exactly_chunk_size_is_still_md5(tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    path = tmp_path / "edge.bin"
    path.write_bytes(data)
    assert hash_file(path, chunk_size=1024) == (_b64(hashlib.md5(data).digest())[:22], "md5")


def test_large_file_hashes_first_and_last_chunk(tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * 157 + b"tail"  # 5028 bytes, not chunk-aligned
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    first = hashlib.sha1(data[:1024]).digest()
    last = hashlib.sha1(data[-1024:]).digest()
    expected = _b64(hashlib.sha1(first + last).digest())[:22]
    assert hash_file(path, chunk_size=1024) == (expected, "sha1-fl")
    # The middle does not count: lamindb's rule trades that for speed on huge files.
    changed = data[:2000] + b"X" + data[2001:]
    path.write_bytes(changed)
    assert hash_file(path, chunk_size=1024) == (expected, "sha1-fl")


def test_streaming_blocks_smaller_than_the_file_give_the_same_md5(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Several read blocks per chunk, both for the md5 and the sha1-fl paths.
    monkeypatch.setattr("loaders.hashing._BLOCK_SIZE", 100)
    data = bytes(range(256)) * 20  # 5120 bytes
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path)[0] == _b64(hashlib.md5(data).digest())[:22]
    first, last = hashlib.sha1(data[:1000]).digest(), hashlib.sha1(data[-1000:]).digest()
    expected = _b64(hashlib.sha1(first + last).digest())[:22]
    assert hash_file(path, chunk_size=1000) == (expected, "sha1-fl")


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        hash_file(tmp_path / "nope.txt")


def test_b64_helpers() -> None:
    assert loaders.to_b64_str(b"\xfb\xff") == "-_8"  # url-safe alphabet, no padding
    assert b16_to_b64("0cc175b9c0f1b6a831c399e269772661") == "DMF1ucDxtqgxw5niaXcmYQ"
    assert b16_to_b64('"0CC175B9C0F1B6A831C399E269772661"') == "DMF1ucDxtqgxw5niaXcmYQ"


def test_hash_set_is_order_and_duplicate_independent_and_joins_with_colon() -> None:
    hashes = ["kAFQmDzST7DWlj99KOF_cg", "DMF1ucDxtqgxw5niaXcmYQ", "zzz"]
    expected = _b64(hashlib.md5(":".join(sorted(hashes)).encode()).digest())[:22]
    assert loaders.hash_set(hashes) == expected
    assert loaders.hash_set(reversed(hashes)) == expected
    assert loaders.hash_set(hashes + hashes[:1]) == expected
    assert len(expected) == 22
    assert loaders.hash_set(hashes[:2]) != expected


def test_hash_from_etag_rules() -> None:
    assert hash_from_etag('"0cc175b9c0f1b6a831c399e269772661"') == ("DMF1ucDxtqgxw5niaXcmYQ", "md5")
    multipart = "0cc175b9c0f1b6a831c399e269772661-12"
    assert hash_from_etag(multipart) == ("DMF1ucDxtqgxw5niaXcmYQ", "md5-12")


def test_real_s3_etags(s3_bucket) -> None:  # noqa: F811 - the fixture
    client, name = s3_bucket.client, s3_bucket.name
    etag = client.put_object(Bucket=name, Key="small.txt", Body=b"abc")["ETag"]
    assert hash_from_etag(etag) == ("kAFQmDzST7DWlj99KOF_cg", "md5")

    parts = [b"p" * (5 * MIB), b"q" * (5 * MIB)]
    upload = client.create_multipart_upload(Bucket=name, Key="multi.bin")
    done = [
        {
            "PartNumber": number,
            "ETag": client.upload_part(
                Bucket=name,
                Key="multi.bin",
                UploadId=upload["UploadId"],
                PartNumber=number,
                Body=body,
            )["ETag"],
        }
        for number, body in enumerate(parts, start=1)
    ]
    client.complete_multipart_upload(
        Bucket=name, Key="multi.bin", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    etag = client.head_object(Bucket=name, Key="multi.bin")["ETag"]
    hex_part = etag.strip('"').split("-")[0]
    # S3's multipart ETag: md5 of the concatenated part md5s, then "-<number of parts>".
    assert hex_part == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest()
    assert hash_from_etag(etag) == (b16_to_b64(hex_part)[:22], "md5-2")
    info = loaders.file_info(f"{s3_bucket.uri}/multi.bin", s3_bucket.storage_options)
    assert (info.size, info.hash, info.hash_type) == (10 * MIB, b16_to_b64(hex_part)[:22], "md5-2")
