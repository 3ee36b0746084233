"""Property-based tests of the query compiler through the public API (docs/reliability.md).

Generated field names (any text: backticks, quotes, braces, Cypher fragments, unicode, empty)
are either valid model fields and lookups, or refused with `FieldValidationError` before any
query runs; generated values (text, ints of any size, floats with NaN and infinities, None,
bytes, lists, dicts, nested) never reach Neo4j as anything but parameters. Neither may ever
cause a Cypher syntax error, a driver error or a write: after every example the graph's node
count and a digest of every property are unchanged, and the records a query returns are exactly
the seeded records that satisfy its condition, evaluated in Python.
"""

from __future__ import annotations

import hashlib
import math
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage as ln
from graph import models as gm
from graph.query import LOOKUPS
from lineage.errors import FieldValidationError

Q = ln.Q
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis folder in the tree; failures print their example
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FIELDS = gm.fields_of("Artifact")  # stored name -> neomodel property type
ALIASES = gm.aliases_of("Artifact")
RELATIONS = gm.relations_of("Artifact")
NAMES = sorted({*FIELDS, *ALIASES})

SEED_KEYS = [
    "a.txt", "données/細胞/α.txt", "Q'uote\".txt", "back`tick.txt", "ΣΑΣ/b.txt", "} DETACH.txt",
]  # fmt: skip
SEED_DESCRIPTIONS = [None, "first", "Ünïcode ΣΑΣ ß", "}) DETACH DELETE n //", "x' OR 1=1 //", ""]
EVIL = [
    "", "`", "``", "'", '"', "{", "}", "})", "}) DETACH DELETE n //", "key` = 1 OR 1=1 //",
    "key`) DETACH DELETE n //", "n.key", "key OR 1=1", "key\0", "key\n", "ключ", "key__", "__key",
    "key____startswith", "key__startswith__", "run__", "__", "id__in__in", "$p0", "key $p0",
    "branch`", "key\u202e", "\udcff", "k\x00ey",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# seed data, state digest, Python semantics
# --------------------------------------------------------------------------------------------
def state() -> tuple[int, str]:
    rows = ln.cypher("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    items = sorted(
        repr((sorted(labels), sorted((k, repr(v)) for k, v in props.items())))
        for labels, props in zip(rows.get("l", []), rows.get("p", []), strict=True)
    )
    rels = ln.cypher("MATCH ()-[r]->() RETURN count(r) AS n")["n"][0]
    digest = hashlib.sha256("\n".join(items).encode()).hexdigest()
    return len(items) + 1_000_000 * int(rels), digest


@pytest.fixture
def seeded(storage: Path, tmp_path: Path) -> dict[str, Any]:
    """Six artifacts (one trashed) with awkward keys and descriptions, a collection, a label."""
    src = tmp_path / "src"
    src.mkdir()
    artifacts = []
    for i, (key, description) in enumerate(zip(SEED_KEYS, SEED_DESCRIPTIONS, strict=True)):
        path = src / f"{i}.txt"
        path.write_text("x" * (i * 7 + 1))
        artifacts.append(
            ln.Artifact(
                path, key=key, description=description, version=str(i) if i % 2 else None
            ).save()
        )
    artifacts[-1].delete()  # in the trash: default queries must not see it
    ln.Collection(artifacts[:2], key="pair").save()
    ln.ULabel(name="label").save()
    records = {a.uid: dict(ln.Artifact.get(a.uid)._values) for a in artifacts}
    return {"records": records, "state": state()}


def _utf16(s: str) -> bytes:
    # Neo4j orders strings by UTF-16 code units (Java), Python by code points.
    return s.encode("utf-16-be", "surrogatepass")


def _as_datetime(value: Any) -> Any:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=timezone.utc)
    return value


def holds(stored: Any, op: str, value: Any, kind: str) -> bool:
    """Whether a stored property satisfies `op value`, with Neo4j's semantics (a missing
    property satisfies nothing but `isnull=True` and `exact=None`)."""
    if op == "isnull":
        return (stored is None) == value
    if op == "exact" and value is None:
        return stored is None
    if stored is None:
        return False
    if kind.startswith("DateTime"):
        value = [_as_datetime(v) for v in value] if op == "in" else _as_datetime(value)
    if op == "exact":
        return stored == value
    if op == "in":
        return any(stored == v for v in value)
    if op in ("gt", "gte", "lt", "lte"):
        a, b = (_utf16(stored), _utf16(value)) if isinstance(stored, str) else (stored, value)
        return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b}[op]
    lower = op.startswith("i")
    a, b = (stored.lower(), value.lower()) if lower else (stored, value)
    base = op[1:] if lower else op
    return {
        "exact": a == b,
        "startswith": a.startswith(b),
        "endswith": a.endswith(b),
        "contains": b in a,
    }[base]


def lookup_parts(lookup: str) -> tuple[str, str]:
    field, _, op = lookup.partition("__")
    return ALIASES.get(field, field), op or "exact"


def evaluate(q: Q, record: dict[str, Any]) -> bool:
    results = []
    for child in q.children:
        if isinstance(child, Q):
            results.append(evaluate(child, record))
        else:
            field, op = lookup_parts(child[0])
            results.append(holds(record.get(field), op, child[1], FIELDS[field]))
    value = all(results) if q.connector == Q.AND else any(results)
    return not value if q.negated else value


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------
def _seed_strings() -> list[str]:
    out = []
    for s in [*SEED_KEYS, *[d for d in SEED_DESCRIPTIONS if d]]:
        out += [s, s[:3], s[-4:], s.upper(), s[1:-1]]
    return out


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 200),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and the infinities included
    st.text(max_size=12),
    st.text(  # lone surrogates: Python strs, but not Unicode text the driver can send
        st.characters() | st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=4
    ),
    st.sampled_from(_seed_strings()),
    st.sampled_from(EVIL),
    st.datetimes(timezones=st.sampled_from([timezone.utc])) | st.datetimes() | st.dates(),
    st.binary(max_size=4),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.frozensets(st.text(max_size=3) | st.integers(-5, 5), max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=2)
    ),
    max_leaves=6,
)
OPS = st.sampled_from(["", *LOOKUPS])
LOOKUP = st.builds(lambda f, op: f"{f}__{op}" if op else f, st.sampled_from(NAMES), OPS)
TYPED = {  # values a field of each type accepts, so most examples reach Neo4j
    "StringProperty": st.one_of(
        st.text(max_size=12), st.sampled_from(_seed_strings()), st.sampled_from(EVIL)
    ),
    "IntegerProperty": st.one_of(
        st.integers(-3, 120),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1]),
        st.floats(),
    ),
    "BooleanProperty": st.booleans(),
    "DateTimeNeo4jFormatProperty": st.one_of(
        st.datetimes(timezones=st.sampled_from([timezone.utc])),
        st.datetimes(),
        st.dates(),
        st.sampled_from(["2024-01-01", "2024-01-01T00:00:00+05:00", "2999-12-31", "soon"]),
    ),
}


@st.composite
def lookup_values(draw: Callable) -> tuple[str, Any]:
    """A lookup and, mostly, a value of the field's type (a list for `in`, a bool for
    `isnull`); otherwise any value at all."""
    lookup = draw(LOOKUP)
    field, op = lookup_parts(lookup)
    if draw(st.integers(0, 3)) == 0:
        return lookup, draw(VALUES)
    typed = TYPED[FIELDS[field]]
    if op == "in":
        return lookup, draw(st.lists(typed, max_size=4) | st.frozensets(typed, max_size=3))
    if op == "isnull":
        return lookup, draw(st.booleans())
    return lookup, draw(typed | st.none())


@st.composite
def q_trees(draw: Callable, depth: int = 3) -> Q:
    if depth == 0 or draw(st.integers(0, 2)) == 0:
        q = Q(**dict([draw(lookup_values())]))
    else:
        children = draw(st.lists(q_trees(depth=depth - 1), min_size=1, max_size=3))
        q = children[0]
        for other in children[1:]:
            q = q & other if draw(st.booleans()) else q | other
    return ~q if draw(st.booleans()) else q


NAME_TEXT = st.one_of(
    st.text(max_size=20),
    st.sampled_from(EVIL),
    st.builds(lambda a, b: f"{a}__{b}", st.sampled_from([*NAMES, *RELATIONS]), st.text(max_size=8)),
    st.builds(lambda a, b: f"{a}__{b}", st.text(max_size=8), st.sampled_from(LOOKUPS)),
    st.builds(lambda a, b: f"{a}__{b}", st.sampled_from(list(RELATIONS)), st.sampled_from(EVIL)),
)


# --------------------------------------------------------------------------------------------
# properties
# --------------------------------------------------------------------------------------------
def mentions_branch(q: Q) -> bool:
    """Whether `q` names the branch anywhere: then no default `branch = 1` is added."""
    return any(
        mentions_branch(c) if isinstance(c, Q) else lookup_parts(c[0])[0] == "branch"
        for c in q.children
    )


def _check_result(seeded: dict[str, Any], where: Q, got: list[Any]) -> None:
    any_branch = mentions_branch(where)
    expected = {
        uid
        for uid, record in seeded["records"].items()
        if (any_branch or record["branch"] == 1) and evaluate(where, record)
    }
    got_uids = [a.uid for a in got]
    assert len(got_uids) == len(set(got_uids))  # no row twice
    assert set(got_uids) == expected, (where, got_uids, expected)


@SETTINGS
@given(pair=lookup_values(), mode=st.sampled_from(["filter", "exclude", "q-or", "not"]))
def test_generated_values_are_only_ever_parameters(
    seeded: dict[str, Any], pair: tuple[str, Any], mode: str
) -> None:
    lookup, value = pair
    try:
        if mode == "filter":
            where = Q(**{lookup: value})
            got = list(ln.Artifact.filter(**{lookup: value}))
        elif mode == "exclude":
            where = ~Q(**{lookup: value})
            got = list(ln.Artifact.filter().exclude(**{lookup: value}))
        elif mode == "q-or":
            where = Q(**{lookup: value}) | Q(uid="no-such-uid")
            got = list(ln.Artifact.filter(where))
        else:
            where = ~Q(**{lookup: value})
            got = list(ln.Artifact.filter(where))
    except FieldValidationError:
        pass  # a value of the wrong type for the field, or a lookup the field has not
    else:
        _check_result(seeded, where, got)
    assert state() == seeded["state"]


@SETTINGS
@given(where=q_trees())
def test_generated_q_trees(seeded: dict[str, Any], where: Q) -> None:
    try:
        got = list(ln.Artifact.filter(where))
        count = ln.Artifact.filter(where).count()
    except FieldValidationError:
        pass
    else:
        _check_result(seeded, where, got)
        assert count == len(got)
    assert state() == seeded["state"]


def _resolves(name: str) -> bool:
    """An independent, simple check: every accepted name starts with a field, an alias or a
    relation of Artifact, and its parts are identifiers or lookups."""
    parts = name.split("__")
    return (
        bool(name)
        and parts[0] in {*NAMES, *RELATIONS}
        and all(p.isidentifier() and p.isascii() for p in parts)
    )


@SETTINGS
@given(
    name=NAME_TEXT,
    value=st.sampled_from(["x", 1, None, True, ["x"]]),
    mode=st.sampled_from(["filter", "get", "exclude", "q", "order_by", "include", "search"]),
)
def test_generated_field_names_are_fields_or_refused(
    seeded: dict[str, Any], name: str, value: Any, mode: str
) -> None:
    calls: dict[str, Callable[[], Any]] = {
        "filter": lambda: list(ln.Artifact.filter(**{name: value})),
        "get": lambda: ln.Artifact.get(**{name: value}),
        "exclude": lambda: list(ln.Artifact.filter().exclude(**{name: value})),
        "q": lambda: list(ln.Artifact.filter(Q(uid="x") | ~Q(**{name: value}))),
        "order_by": lambda: list(ln.Artifact.filter().order_by(name)),
        "include": lambda: ln.Artifact.df(include=["key", name]),
        "search": lambda: ln.Artifact.search("a", field=name).df(),
    }
    try:
        calls[mode]()
    except FieldValidationError as exc:
        assert str(exc)
    except (ln.errors.DoesNotExist, ln.errors.MultipleResultsFound):
        assert mode == "get" and _resolves(name)
    else:
        assert _resolves(name.lstrip("-") if mode == "order_by" else name), name
    assert state() == seeded["state"]


@SETTINGS
@given(
    text=st.one_of(
        st.text(max_size=10),
        st.text(st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=3),
        st.sampled_from([*EVIL, *_seed_strings()]),
    )
)
def test_generated_search_strings(seeded: dict[str, Any], text: str) -> None:
    try:
        found = list(ln.Artifact.search(text, field=["key", "description"]))
    except FieldValidationError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)  # only a lone surrogate is refused
    else:
        for artifact in found:
            fields = [artifact.key or "", artifact.description or ""]
            assert any(text.lower() in f.lower() for f in fields), (text, fields)
    assert state() == seeded["state"]


def test_the_seed_is_what_the_properties_assume(seeded: dict[str, Any]) -> None:
    """Guards the properties against passing vacuously: the seed has visible and trashed
    records, missing descriptions, and the evaluator agrees with a few known queries."""
    records = seeded["records"]
    assert sum(r["branch"] == 1 for r in records.values()) == 5
    assert [a.key for a in ln.Artifact.filter(key__startswith="données")] == [SEED_KEYS[1]]
    assert ln.Artifact.filter(description__isnull=True).count() == 1
    assert ln.Artifact.filter(size__gt=math.inf).count() == 0
    assert ln.Artifact.filter().exclude(description__contains="DETACH").count() == 4
    _check_result(
        seeded,
        Q(description__icontains="σας") | Q(size__lt=9),
        [*ln.Artifact.filter(Q(description__icontains="σας") | Q(size__lt=9))],
    )
