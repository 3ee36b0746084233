"""lamindb parity (docs/schema.md, "uids, ids and versions"): hashes, collection hashes, uids and version counters.

Expected values are lamindb's published test vectors or are computed here with hashlib, never
with the library's own helpers.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

import lineage as ln

MiB = 1024**2
CHUNK = 50 * MiB
BASE62 = re.compile(r"^[0-9A-Za-z]+$")
# lamindb's version counter alphabet, in order.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def b64(digest: bytes) -> str:
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:22]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "content, expected",
    [(b"a", "DMF1ucDxtqgxw5niaXcmYQ"), (b"abc", "kAFQmDzST7DWlj99KOF_cg")],
)
def test_hash_vectors(storage: Path, tmp_path: Path, content: bytes, expected: str) -> None:
    artifact = ln.Artifact(write(tmp_path / "f.txt", content), key="f.txt")
    assert artifact.hash == expected
    assert artifact.hash_type == "md5"
    assert b64(hashlib.md5(content).digest()) == expected
    artifact.save()
    stored = ln.cypher("MATCH (a:Artifact) RETURN a.hash AS h, a.hash_type AS t")
    assert list(zip(stored["h"], stored["t"])) == [(expected, "md5")]


def _sparse_file(path: Path, size: int) -> Path:
    """A sparse file with distinct bytes at both ends, so first and last chunk differ."""
    with open(path, "wb") as fp:
        fp.truncate(size)
        fp.write(b"head of the file")
        fp.seek(size - 4)
        fp.write(b"tail")
    assert path.stat().st_size == size
    return path


def test_large_file_uses_sha1_of_first_and_last_chunk(storage: Path, tmp_path: Path) -> None:
    path = _sparse_file(tmp_path / "big.bin", CHUNK + 1)
    with open(path, "rb") as fp:
        first = hashlib.sha1(fp.read(CHUNK)).digest()
        fp.seek(-CHUNK, 2)
        last = hashlib.sha1(fp.read(CHUNK)).digest()
    expected = b64(hashlib.sha1(first + last).digest())

    artifact = ln.Artifact(path, key="big.bin")
    assert artifact.hash_type == "sha1-fl"
    assert artifact.hash == expected
    assert artifact.size == CHUNK + 1


def test_file_of_exactly_50_mib_uses_md5(storage: Path, tmp_path: Path) -> None:
    path = _sparse_file(tmp_path / "edge.bin", CHUNK)
    expected = b64(hashlib.md5(path.read_bytes()).digest())
    artifact = ln.Artifact(path, key="edge.bin")
    assert (artifact.hash, artifact.hash_type) == (expected, "md5")


def test_collection_hash(storage: Path, tmp_path: Path) -> None:
    artifacts = [
        ln.Artifact(write(tmp_path / f"{name}.txt", name.encode()), key=f"{name}.txt").save()
        for name in ("one", "two", "three")
    ]
    hashes = [b64(hashlib.md5(name.encode()).digest()) for name in ("one", "two", "three")]
    assert [a.hash for a in artifacts] == hashes
    expected = b64(hashlib.md5(":".join(sorted(hashes)).encode()).digest())

    first = ln.Collection(artifacts, key="c")
    reordered = ln.Collection(artifacts[::-1], key="c-reordered")
    assert first.hash == expected
    assert reordered.hash == expected
    first.save()
    stored = ln.cypher("MATCH (c:Collection) RETURN c.hash AS h")
    assert list(stored["h"]) == [expected]

    # The same artifacts in another order: the same content, so the existing collection.
    again = ln.Collection([artifacts[1], artifacts[2], artifacts[0]], key="c-again")
    assert again.uid == first.uid
    # Another set of artifacts: another hash.
    fewer = ln.Collection(artifacts[:2], key="c2")
    assert fewer.hash == b64(hashlib.md5(":".join(sorted(hashes[:2])).encode()).digest())
    assert fewer.hash != expected


def test_version_counters_are_base62(storage: Path, tmp_path: Path) -> None:
    v = ln.Artifact(write(tmp_path / "v0.txt", b"version 0"), key="family.txt").save()
    family = [v]
    for i in range(1, 12):
        v = ln.Artifact(write(tmp_path / f"v{i}.txt", f"version {i}".encode()), revises=v).save()
        family.append(v)
    stem = family[0].stem_uid
    counters = [a.uid[16:] for a in family]
    assert counters == [f"000{c}" for c in "0123456789AB"]
    assert all(a.stem_uid == stem for a in family)
    assert all(a.key == "family.txt" for a in family)

    rows = ln.cypher(
        "MATCH (a:Artifact) WHERE a.uid STARTS WITH $stem "
        "RETURN a.uid AS uid, a.is_latest AS latest ORDER BY a.uid",
        stem=stem,
    )
    assert list(rows["uid"]) == [a.uid for a in family]
    assert list(rows["latest"]) == [False] * 11 + [True]
    assert [a.uid for a in family[-1].versions] == [a.uid for a in family]
    # The alphabet's order is lamindb's: digits, then upper case, then lower case.
    assert sorted(counters, key=lambda c: [ALPHABET.index(ch) for ch in c]) == counters
    chain = ln.cypher("MATCH p = (:Artifact)-[:REVISES*]->(:Artifact) RETURN max(length(p)) AS n")
    assert chain["n"][0] == 11


def test_uid_lengths_and_alphabet(storage: Path, tmp_path: Path) -> None:
    artifact = ln.Artifact(write(tmp_path / "x.txt", b"x"), key="x.txt").save()
    collection = ln.Collection([artifact], key="c").save()
    transform = ln.Transform(key="pipeline.py", kind="script").save()
    run = ln.Run(transform).save()
    label = ln.ULabel(name="label").save()
    user = artifact.created_by

    assert len(artifact.uid) == 20 and artifact.uid.endswith("0000")
    assert len(collection.uid) == 20 and collection.uid.endswith("0000")
    assert len(transform.uid) == 16 and transform.uid.endswith("0000")
    assert len(run.uid) == 20
    assert len(label.uid) == 8
    assert isinstance(user, ln.User) and len(user.uid) == 8
    for record in (artifact, collection, transform, run, label, user):
        assert BASE62.match(record.uid), record.uid

    rows = ln.cypher("MATCH (n) WHERE n.uid IS NOT NULL RETURN labels(n)[0] AS label, n.uid AS uid")
    lengths = {label: {len(u) for u in group["uid"]} for label, group in rows.groupby("label")}
    assert lengths["Artifact"] == {20}
    assert lengths["Collection"] == {20}
    assert lengths["Transform"] == {16}
    assert lengths["Run"] == {20}
    assert lengths["ULabel"] == {8}
    assert lengths["User"] == {8}
    bad = [u for u in rows["uid"] if not BASE62.match(u)]
    assert bad == []


def test_random_stems_use_the_whole_base62_alphabet(storage: Path, tmp_path: Path) -> None:
    """Stems are random over 0-9A-Za-z: 40 new families use far more than the hex digits."""
    paths = [write(tmp_path / f"s{i}.txt", f"stem {i}".encode()) for i in range(40)]
    artifacts = ln.save([ln.Artifact(p, key=p.name) for p in paths])
    stems = [a.stem_uid for a in artifacts]
    assert len(set(stems)) == 40
    chars = set("".join(stems))
    assert chars <= set(ALPHABET)
    assert any(c.isupper() for c in chars) and any(c.islower() for c in chars)
    assert any(c.isdigit() for c in chars)
