"""Bad input (docs/reliability.md): every wrong argument gets a clear error naming it, and nothing is stored.

"Nothing stored" is checked the same way everywhere (`Unchanged`): the number of nodes and
relationships, a digest of every node's properties, the files under the storage root and the
staging folder are the same after the failed call as before it.

Unreadable files: the suite runs as root in CI, where `chmod 000` does not stop reads, so the
cases use what root cannot read either: a directory where a file is expected, a FIFO (reading
it would block forever), a dangling symlink and a symlink loop. The permission case itself runs
only as a normal user.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy.sparse import csc_matrix

import lineage as ln
from lineage._keys import MAX_KEY_BYTES, check_key
from tests.conftest import make_artifact

E = ln.errors


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def graph_state() -> tuple[int, int, str]:
    """(nodes, relationships, digest of every node's labels and properties)."""
    rows = ln.cypher("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    digest = hashlib.sha256()
    items = sorted(
        repr((sorted(labels), sorted((k, repr(v)) for k, v in props.items())))
        for labels, props in zip(rows.get("l", []), rows.get("p", []), strict=True)
    )
    for item in items:
        digest.update(item.encode())
    rels = ln.cypher("MATCH ()-[r]->() RETURN count(r) AS n")["n"][0]
    return len(rows), int(rels), digest.hexdigest()


def files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


class Unchanged:
    """`with Unchanged(storage):` asserts the graph and the storage/staging folders are the
    same at the end of the block as at its start."""

    def __init__(self, storage: Path) -> None:
        self.storage = storage
        self.staging = ln.settings.cache_dir / "staging"

    def snapshot(self) -> tuple[Any, ...]:
        return graph_state(), files_under(self.storage), files_under(self.staging)

    def __enter__(self) -> Unchanged:
        self.before = self.snapshot()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self.snapshot() == self.before


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def ctx(storage: Path, tmp_path: Path) -> dict[str, Any]:
    """Saved records the constructors need, created before any snapshot is taken."""
    artifact = make_artifact(storage, "member.txt")
    transform = ln.Transform(key="t.py", kind="script").save()
    ln.ULabel(name="warm-up").save()  # creates the current User, so later saves add nothing else
    return {
        "src": write(tmp_path / "in" / "x.txt", b"x"),
        "artifact": artifact,
        "transform": transform,
    }


# --------------------------------------------------------------------------------------------
# wrong types for every constructor argument
# --------------------------------------------------------------------------------------------
def _valid(registry: str, ctx: dict[str, Any]) -> dict[str, Any]:
    return {
        "Artifact": {"data": ctx["src"]},
        "Collection": {"artifacts": [ctx["artifact"]], "key": "c"},
        "Run": {"transform": ctx["transform"]},
        "Transform": {"key": "other.py"},
        "ULabel": {"name": "x"},
        "Project": {"name": "x"},
        "Space": {"name": "x"},
        "Reference": {"name": "x"},
        "User": {"handle": "h"},
        "Storage": {"root": "/tmp/some-root"},
    }[registry]


class _Opaque:
    """An object of a type no argument takes."""


V, T, I = E.ValidationError, TypeError, E.InvalidArgument
CASES: list[tuple[str, str, Any, type[Exception]]] = [
    # Artifact
    ("Artifact", "data", 42, T),
    ("Artifact", "data", {"a": 1}, T),
    ("Artifact", "data", b"/etc/passwd", T),
    ("Artifact", "key", 5, I),
    ("Artifact", "key", b"raw/x.txt", I),
    ("Artifact", "description", 5, V),
    ("Artifact", "description", ["d"], V),
    ("Artifact", "run", "a-run-uid", T),
    ("Artifact", "revises", "a-uid", T),
    ("Artifact", "version", 1, V),
    ("Artifact", "version", 1.0, V),
    # Collection
    ("Collection", "artifacts", 5, T),
    ("Collection", "artifacts", "a.txt", T),
    ("Collection", "artifacts", [_Opaque()], T),
    ("Collection", "artifacts", [], ValueError),
    ("Collection", "key", 5, I),
    ("Collection", "name", 5, I),
    ("Collection", "description", 5, V),
    ("Collection", "meta", "meta.txt", T),
    ("Collection", "reference", 5, V),
    ("Collection", "reference_type", ["doi"], V),
    ("Collection", "run", 3, T),
    ("Collection", "revises", "c-uid", T),
    ("Collection", "version", 2, V),
    # Run
    ("Run", "transform", "t.py", T),
    ("Run", "transform", None, T),
    ("Run", "name", 5, V),
    ("Run", "params", [1, 2], V),
    ("Run", "params", {"f": _Opaque()}, V),
    ("Run", "started_at", "yesterday", V),
    ("Run", "started_at", 1700000000, V),
    ("Run", "initiated_by", "run-uid", T),
    # Transform
    ("Transform", "key", 5, V),
    ("Transform", "description", 5, V),
    ("Transform", "kind", 5, V),
    ("Transform", "kind", "notebooks", V),
    ("Transform", "version", 1.0, V),
    ("Transform", "revises", "t-uid", T),
    ("Transform", "source_code", b"print(1)", V),
    # the small registries
    *[
        (r, f, v, V)
        for r in ("ULabel", "Project", "Space")
        for f, v in (("name", 5), ("description", [1]))
    ],
    ("Reference", "name", 5, V),
    ("Reference", "url", 5, V),
    ("Reference", "doi", 10.1000, V),
    ("Reference", "description", b"x", V),
    ("User", "handle", 5, V),
    ("User", "name", ["a"], V),
    ("Storage", "root", 5, V),
    ("Storage", "description", True, V),
    # an unknown keyword, for every registry
    *[
        (r, "colour", "red", I)
        for r in (
            "Artifact",
            "Collection",
            "Run",
            "Transform",
            "ULabel",
            "Project",
            "Space",
            "Reference",
            "User",
            "Storage",
        )
    ],  # fmt: skip
]


@pytest.mark.parametrize(
    "registry, arg, value, error",
    CASES,
    ids=[f"{r}-{a}-{type(v).__name__}" for r, a, v, _ in CASES],
)
def test_wrong_type_for_every_constructor_argument(
    ctx: dict[str, Any], storage: Path, registry: str, arg: str, value: Any, error: type[Exception]
) -> None:
    cls = getattr(ln, registry)
    kwargs = {**_valid(registry, ctx), arg: value}
    with Unchanged(storage):
        with pytest.raises(error, match=rf"(?<![A-Za-z_]){arg}(?![A-Za-z])") as info:
            cls(**kwargs).save()
    # Every error is one of lineage's documented types, or a builtin TypeError/ValueError.
    assert isinstance(info.value, (TypeError, ValueError))


def test_valid_arguments_of_the_table_do_construct(ctx: dict[str, Any], storage: Path) -> None:
    """The table's base arguments are valid: each failure above is the bad argument's."""
    for registry in ("Artifact", "Collection", "Run", "Transform", "ULabel", "Project", "Space",
                     "Reference", "User", "Storage"):  # fmt: skip
        getattr(ln, registry)(**_valid(registry, ctx))


def test_a_bad_argument_is_refused_even_when_the_content_exists(
    ctx: dict[str, Any], storage: Path
) -> None:
    """Saving the same bytes returns the stored record; a bad key or description must still
    fail rather than be dropped silently."""
    ln.Artifact(ctx["src"], key="x.txt").save()
    with Unchanged(storage):
        with pytest.raises(E.InvalidArgument, match="key"):
            ln.Artifact(ctx["src"], key="../x.txt")
        with pytest.raises(E.ValidationError, match="description"):
            ln.Artifact(ctx["src"], description=5)


def test_setting_a_bad_key_later_is_refused(ctx: dict[str, Any], storage: Path) -> None:
    artifact = ctx["artifact"]
    with Unchanged(storage):
        with pytest.raises(E.InvalidArgument, match="absolute"):
            artifact.key = "/etc/passwd"
        artifact.save()
    assert ln.Artifact.get(artifact.uid).key == "member.txt"


def test_lone_surrogates_in_any_text_field_are_refused(ctx: dict[str, Any], storage: Path) -> None:
    with Unchanged(storage):
        with pytest.raises(E.ValidationError, match=r"ULabel\.name .*surrogate"):
            ln.ULabel(name="caf\udce9")
        with pytest.raises(E.ValidationError, match=r"Artifact\.description .*surrogate"):
            ln.Artifact(ctx["src"], description="\udcff")
        with pytest.raises(E.ValidationError, match=r"Run\.name .*surrogate"):
            ln.Run(ctx["transform"], name="\ud800")


# --------------------------------------------------------------------------------------------
# files that are missing, unreadable, or not files
# --------------------------------------------------------------------------------------------
def test_missing_and_non_regular_files(storage: Path, tmp_path: Path, ctx: dict[str, Any]) -> None:
    folder = tmp_path / "folder.csv"  # an empty directory named like a file
    folder.mkdir()
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "gone.csv")
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    with Unchanged(storage):
        with pytest.raises(FileNotFoundError, match="ghost.csv"):
            ln.Artifact(tmp_path / "ghost.csv")
        with pytest.raises(E.InvalidArgument, match=r"folder\.csv has no files"):
            ln.Artifact(folder)  # a folder is an artifact only with files in it
        with pytest.raises(E.InvalidArgument, match=r"pipe\.csv is not a regular file"):
            ln.Artifact(fifo)  # without the check, hashing would block forever
        with pytest.raises(FileNotFoundError, match=r"dangling\.csv"):
            ln.Artifact(dangling)
        with pytest.raises((E.InvalidArgument, FileNotFoundError), match=r"loop\.csv"):
            ln.Artifact(loop)
        with pytest.raises(E.InvalidArgument, match="empty"):
            ln.Artifact("")
        with pytest.raises(E.InvalidArgument, match="NUL"):
            ln.Artifact(str(tmp_path / "a\0b.csv"))


@contextlib.contextmanager
def _unprivileged() -> Iterator[None]:
    """Root reads files whatever their mode: run the block with the effective uid of `nobody`
    (the real uid stays root, so it can switch back)."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_unreadable_file(storage: Path) -> None:
    # Outside pytest's tmp dir (0700, root's): `nobody` must reach the file to be refused by it.
    folder = Path(tempfile.mkdtemp(prefix="lineage-unreadable-"))
    try:
        folder.chmod(0o711)
        secret = write(folder / "secret.csv", b"a\n1\n")
        secret.chmod(0)
        with Unchanged(storage):
            with _unprivileged(), pytest.raises(PermissionError, match=r"secret\.csv"):
                ln.Artifact(secret)
    finally:
        shutil.rmtree(folder)


def test_file_with_an_undecodable_name_is_stored_under_its_uid(
    storage: Path, tmp_path: Path
) -> None:
    """A name with bytes that are not UTF-8 reaches Python as lone surrogates; the file is
    copied to `.lineage/<uid><suffix>`, so its name never reaches the graph."""
    raw = os.fsencode(tmp_path) + b"/caf\xe9.txt"
    with open(raw, "wb") as fp:
        fp.write(b"latin-1 name")
    artifact = ln.Artifact(os.fsdecode(raw), key="cafe.txt").save()
    assert artifact.path.name == f"{artifact.uid}.txt"
    assert artifact.load() == "latin-1 name"


# --------------------------------------------------------------------------------------------
# unknown uids, fields and lookups
# --------------------------------------------------------------------------------------------
def test_unknown_uids_and_prefixes(ctx: dict[str, Any], storage: Path) -> None:
    artifact = ctx["artifact"]
    label = ln.ULabel.get(name="warm-up")
    with Unchanged(storage):
        for uid in ("0" * 20, "zzzz", artifact.uid[:8] + "zzzz", artifact.uid + "0"):
            with pytest.raises(E.DoesNotExist, match=repr(uid).replace("(", r"\(")):
                ln.Artifact.get(uid)
        with pytest.raises(E.DoesNotExist, match=label.uid):  # another registry's uid
            ln.Artifact.get(label.uid)
        with pytest.raises(E.DoesNotExist, match=artifact.uid):
            ln.Collection.get(artifact.uid)
        with pytest.raises(E.DoesNotExist, match="99999"):
            ln.Artifact.get(99999)
        with pytest.raises(E.InvalidArgument, match="empty"):
            ln.Artifact.get("")  # a prefix of every uid: must not return some record
        with pytest.raises(E.DoesNotExist, match="nothing-here"):
            ln.ULabel.get(name="nothing-here")


BAD_NAMES = ["nope", "key__nope", "run__nope", "ulabels__name__nope", "keyy", "Key", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unknown_fields_and_lookups_everywhere(ctx: dict[str, Any], name: str) -> None:
    valid = r"valid (fields|lookups|relations): "
    calls: list[Callable[[], Any]] = [
        lambda: ln.Artifact.filter(**{name: "x"}),
        lambda: ln.Artifact.get(**{name: "x"}),
        lambda: ln.Artifact.filter().exclude(**{name: "x"}),
        lambda: ln.Artifact.filter(ln.Q(**{name: "x"}) | ln.Q(key="a")),
        lambda: ln.Artifact.filter(~ln.Q(**{name: "x"})),
        lambda: ln.Artifact.filter().order_by(name),
        lambda: ln.Artifact.filter().order_by(f"-{name}"),
        lambda: ln.Artifact.df(include=name),
        lambda: ln.Artifact.df(include=["key", name]),
        lambda: ln.Artifact.search("x", field=name),
    ]
    for call in calls:
        with pytest.raises(E.FieldValidationError) as info:
            call()
        message = str(info.value)
        assert repr(name.split("__")[-1]) in message or repr(name) in message or not name, message
        if name:
            assert re.search(valid, message), message


def test_unknown_field_names_the_valid_ones(ctx: dict[str, Any]) -> None:
    with pytest.raises(E.FieldValidationError, match=r"'colour'; valid fields: .*key.*suffix"):
        ln.Artifact.filter(colour="red")
    with pytest.raises(E.FieldValidationError, match=r"lookup 'startwith'.*valid lookups: "):
        ln.Artifact.filter(key__startwith="a")
    with pytest.raises(E.FieldValidationError, match=r"has no relation 'runs'.*valid relations"):
        ln.Artifact.df(include="runs__name")


# --------------------------------------------------------------------------------------------
# keys
# --------------------------------------------------------------------------------------------
BAD_KEYS: list[tuple[Any, str]] = [
    ("../x.txt", r"'\.\.' segment"),
    ("a/../../x.txt", r"'\.\.' segment"),
    ("a/./x.txt", r"'\.' segment"),
    ("a//x.txt", "empty segment"),
    ("folder/", "empty segment"),
    ("/etc/passwd", "absolute"),
    ("C:/x.txt", "drive"),
    ("s3://bucket/x.txt", "URI"),
    ("a\\..\\x.txt", "backslash"),
    ("a\0b.txt", "control character"),
    ("a\nb.txt", "control character"),
    ("x" * (MAX_KEY_BYTES + 1), f"at most {MAX_KEY_BYTES}"),
    ("é" * (MAX_KEY_BYTES // 2 + 1), f"at most {MAX_KEY_BYTES}"),  # bytes, not characters
    ("\udcff.txt", "lone surrogate"),
    (b"x.txt", "must be a str, not bytes"),
    ("", "empty"),
    (" x.txt", "whitespace"),
    ("x.txt\t", "whitespace|control"),
    (".lineage/abc.txt", "reserved"),
    ("a/.lamindb/abc.txt", "reserved"),
]


@pytest.mark.parametrize("key, problem", BAD_KEYS, ids=[repr(k)[:30] for k, _ in BAD_KEYS])
def test_bad_keys_are_refused_by_artifact_and_collection(
    ctx: dict[str, Any], storage: Path, key: Any, problem: str
) -> None:
    with Unchanged(storage):
        with pytest.raises(E.InvalidArgument, match=problem) as info:
            ln.Artifact(ctx["src"], key=key)
        assert "Artifact key" in str(info.value)
        with pytest.raises(E.InvalidArgument, match=problem) as info:
            ln.Collection([ctx["artifact"]], key=key)
        assert "Collection key" in str(info.value)


@pytest.mark.parametrize(
    "key",
    [
        "x" * (MAX_KEY_BYTES - 4) + ".txt",  # exactly the limit
        "a b/c d.txt",
        "..x/y..z.txt",
        ".hidden.txt",
        "a/.lineagex/b.txt",
    ],
)
def test_edge_keys_that_are_valid(ctx: dict[str, Any], key: str) -> None:
    assert check_key(key) == key
    artifact = ln.Artifact(ctx["src"], key=key).save()
    assert ln.Artifact.get(key=key) == artifact


@pytest.mark.parametrize("key", ["données/细胞/α.txt", "ζ/日本語/😀.txt", "e\u0301.txt"])
def test_unicode_keys_end_to_end(storage: Path, tmp_path: Path, key: str) -> None:
    artifact = ln.Artifact(write(tmp_path / "u.txt", key.encode()), key=key).save()
    assert artifact.path.name == f"{artifact.uid}.txt"  # a key never becomes a path
    assert ln.Artifact.get(key=key) == artifact
    assert ln.Artifact.filter(key__startswith=key.split("/")[0]).one() == artifact
    assert ln.Artifact.filter(key__icontains=key[-6:].upper()).one() == artifact
    assert ln.Artifact.df()["key"].tolist() == [key]
    assert artifact.cache().read_text() == key
    assert artifact.load() == key
    collection = ln.Collection([artifact], key=f"c/{key}").save()
    assert ln.Collection.get(key=f"c/{key}") == collection
    assert collection.load() == key


def test_unicode_keys_are_not_normalised(storage: Path, tmp_path: Path) -> None:
    """NFC "é" and NFD "e\\u0301" are different keys: stored as given."""
    a = ln.Artifact(write(tmp_path / "1.txt", b"1"), key="\u00e9.txt").save()
    b = ln.Artifact(write(tmp_path / "2.txt", b"2"), key="e\u0301.txt").save()
    assert ln.Artifact.get(key="\u00e9.txt") == a
    assert ln.Artifact.get(key="e\u0301.txt") == b


# --------------------------------------------------------------------------------------------
# corrupt or truncated files
# --------------------------------------------------------------------------------------------
def _h5ad(path: Path, obs: pd.DataFrame | None = None, x: Any = None) -> Path:
    n = 4 if obs is None else len(obs)
    adata = ad.AnnData(
        X=np.arange(n * 3, dtype="float32").reshape(n, 3) if x is None else x,
        obs=obs if obs is not None else pd.DataFrame(index=[f"c{i}" for i in range(n)]),
        var=pd.DataFrame(index=["g1", "g2", "g3"]),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path)
    return path


def _truncate(path: Path, fraction: float) -> Path:
    data = path.read_bytes()
    out = path.with_name("trunc-" + path.name)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


def _corrupt_files(tmp_path: Path) -> dict[str, Path]:
    parquet = tmp_path / "ok" / "t.parquet"
    parquet.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"a": range(100)}).to_parquet(parquet)
    h5ad = _h5ad(tmp_path / "ok" / "a.h5ad")
    garbage = tmp_path / "bad"
    return {
        "garbage.parquet": write(garbage / "garbage.parquet", b"PAR1 this is not parquet"),
        "truncated.parquet": _truncate(parquet, 0.5),
        "garbage.h5ad": write(garbage / "garbage.h5ad", b"\x89HDF\r\n\x1a\n" + b"0" * 200),
        "truncated.h5ad": _truncate(h5ad, 0.5),
        "empty.h5ad": write(garbage / "empty.h5ad", b""),
    }


def test_corrupt_files_register_but_do_not_load(
    storage: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A file is a file: registering works (otype and n_observations stay unknown); loading it
    raises the reader's error naming the stored file; mapping it raises ValueError."""
    for name, path in _corrupt_files(tmp_path).items():
        artifact = ln.Artifact(path, key=name).save()
        assert artifact.otype is None and artifact.n_observations is None, name
        artifact.describe()
        assert name in capsys.readouterr().out
        # The reader's own error type (ArrowInvalid, h5py's OSError), with the file named.
        with pytest.raises((ValueError, OSError), match=rf"{artifact.uid}\S* is not a readable"):
            artifact.load()
        with pytest.raises((ValueError, OSError), match=artifact.uid):
            ln.Collection([artifact], key=f"c-{name}").save().load()
        if name.endswith(".h5ad"):
            collection = ln.Collection.get(key=f"c-{name}")
            with pytest.raises(ValueError, match=rf"{artifact.uid}\.h5ad"):
                collection.mapped()


def test_csc_matrix_through_collection_mapped(storage: Path, tmp_path: Path) -> None:
    csc = _h5ad(tmp_path / "csc.h5ad", x=csc_matrix(np.eye(4, 3, dtype="float32")))
    artifact = ln.Artifact(csc, key="csc.h5ad").save()
    assert artifact.otype == "AnnData" and artifact.n_observations == 4
    collection = ln.Collection([artifact], key="csc").save()
    with Unchanged(storage):
        with pytest.raises(ValueError, match=rf"X in \S*{artifact.uid}\.h5ad is a csc matrix"):
            collection.mapped()


def test_nan_and_missing_obs_labels_in_mapped_and_load(storage: Path, tmp_path: Path) -> None:
    """A missing label is NaN (lamindb's value); a file without the column contributes nothing
    for it (lamindb omits the key); neither is an encoder class."""
    obs1 = pd.DataFrame(
        {"cell_type": pd.Categorical(["T", None, "B", "T"])}, index=[f"a{i}" for i in range(4)]
    )
    obs2 = pd.DataFrame(index=["b0", "b1"])  # no cell_type at all
    obs3 = pd.DataFrame({"cell_type": ["NK", np.nan]}, index=["c0", "c1"], dtype=object)
    arts = [
        ln.Artifact(_h5ad(tmp_path / f"{i}.h5ad", obs), key=f"obs/{i}.h5ad").save()
        for i, obs in enumerate((obs1, obs2, obs3))
    ]
    collection = ln.Collection(arts, key="obs").save()
    with collection.mapped(obs_keys="cell_type") as ds:
        assert len(ds) == 8
        assert sorted(ds.encoders["cell_type"]) == ["B", "NK", "T"]
        assert np.isnan(ds[1]["cell_type"])
        assert "cell_type" not in ds[4]
        assert ds[6]["cell_type"] == ds.encoders["cell_type"]["NK"]
        assert np.isnan(ds[7]["cell_type"])
        labels = ds.get_merged_labels("cell_type")
        assert pd.isna(labels).sum() == 2 and len(labels) == 6
    adata = collection.load()
    assert adata.n_obs == 8
    assert adata.obs["cell_type"].isna().sum() == 4  # 2 missing + 2 from the file without it
    assert set(adata.obs["cell_type"].dropna()) == {"T", "B", "NK"}


# --------------------------------------------------------------------------------------------
# revises across registries; deleting a collection member
# --------------------------------------------------------------------------------------------
def test_revises_across_registries(ctx: dict[str, Any], storage: Path) -> None:
    artifact = ctx["artifact"]
    collection = ln.Collection([artifact], key="c").save()
    transform = ctx["transform"]
    with Unchanged(storage):
        with pytest.raises(TypeError, match=r"Collection\(revises=.*Collection, not Artifact"):
            ln.Collection([artifact], key="c2", revises=artifact)
        with pytest.raises(TypeError, match=r"Artifact\(revises=.*Artifact, not Collection"):
            ln.Artifact(ctx["src"], revises=collection)
        with pytest.raises(TypeError, match=r"Transform\(revises=.*Transform, not Artifact"):
            ln.Transform(revises=artifact)  # no key: the type error comes first
        with pytest.raises(TypeError, match=r"Transform\(revises=.*Transform, not Collection"):
            ln.Transform(key="x.py", revises=collection)
        with pytest.raises(TypeError, match=r"Artifact\(revises=.*Artifact, not Transform"):
            ln.Artifact(ctx["src"], revises=transform)


def test_permanent_delete_of_a_member_changes_nothing(ctx: dict[str, Any], storage: Path) -> None:
    a1 = ctx["artifact"]
    a2 = make_artifact(storage, "second.txt")
    collection = ln.Collection([a2, a1], key="pair").save()
    content = a1.path.read_bytes()
    with Unchanged(storage):
        with pytest.raises(E.InvalidArgument, match=rf"{a1.uid} is a member.*'pair'"):
            a1.delete(permanent=True)
    assert a1.path.read_bytes() == content
    assert ln.Artifact.get(a1.uid).branch == 1
    assert [a.uid for a in collection.ordered_artifacts] == [a2.uid, a1.uid]
    positions = ln.cypher(
        "MATCH (:Collection {uid: $c})-[r:CONTAINS]->(a) RETURN a.uid AS uid, r.position AS p "
        "ORDER BY p",
        c=collection.uid,
    )
    assert positions.to_dict("records") == [{"uid": a2.uid, "p": 0}, {"uid": a1.uid, "p": 1}]


def test_run_started_at_must_be_a_datetime(ctx: dict[str, Any], storage: Path) -> None:
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    run = ln.Run(ctx["transform"], started_at=when).save()
    assert ln.Run.get(run.uid).started_at == when
    with Unchanged(storage):
        with pytest.raises(E.ValidationError, match="finished_at"):
            ln.Run(ctx["transform"], finished_at="later")
