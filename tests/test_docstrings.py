"""Every docstring example in lineage/, graph/ and loaders/ runs, against the session's Neo4j.

An example that does not run is a bug, so each docstring with `>>>` lines is one test. The
examples run with the standard library's doctest machinery in a small, known world (below:
`_world`), so a docstring can say `artifact.cache()` without building an artifact first.

How output is checked: where an example writes its expected output, the output must match
(`...` matches anything, whitespace is normalised). Where it writes none, the example must only
run without raising: most examples show calls whose results (uids, DataFrames, times) differ
from run to run, and the point of running them is that the call exists and works as shown.

Examples that cannot run anywhere (connecting to `db.example.org`) are not written with `>>>`.

The world every example sees (besides the module's own globals):

    ln, pd, np, ad, Path        the package and the usual imports
    df, df2                     two small DataFrames
    adata                       a small AnnData (obs: cell_type, batch)
    counts.csv, sample.h5ad     files in the current directory (a fresh temporary one)
    paths                       two more text files (Path objects)
    artifact                    Artifact "raw/counts.csv", saved
    artifact1, artifact2, artifact3
                                Artifacts "scrna/sample1.h5ad" … "scrna/sample3.h5ad", saved
    collection                  Collection "scrna" of artifact1 and artifact2, saved
    transform, run              Transform "preprocess.py" and a Run of it (status "started")
    label                       ULabel "my-label", saved; ULabel "tissue" also exists
    conn                        the instance's graph.Connection
    "shared"                    an instance name (`Registry.using("shared")`) for the same server
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest

import lineage as ln
from lineage._instance import current
from tests.conftest import Neo4jUnderTest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lineage", "graph", "loaders")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules() -> list[str]:
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if not info.name.endswith(".__main__"):  # runs the CLI when imported
                names.append(info.name)
    return sorted(names)


def _docstring_tests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = []
    for name in _modules():
        module = importlib.import_module(name)
        found += [t for t in finder.find(module) if t.examples]
    return sorted(found, key=lambda t: t.name)


class _Checker(doctest.OutputChecker):
    """doctest's checker, except that an example with no expected output may print anything."""

    def check_output(self, want: str, got: str, optionflags: int) -> bool:
        if not want:
            return True
        return super().check_output(want, got, optionflags)


@pytest.fixture
def world(
    storage: Path,
    neo4j: Neo4jUnderTest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    s = neo4j.settings
    # `ln.connect()` with no arguments must find the session's Neo4j, as in the guide's test.
    monkeypatch.setenv("NEO4J_URI", s.uri)
    monkeypatch.setenv("NEO4J_USER", s.user or "neo4j")
    if s.password is not None:
        monkeypatch.setenv("NEO4J_PASSWORD", s.password)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield _world(work, s)
    ln.context.run = ln.context.transform = None


def _world(work: Path, settings: Any) -> dict[str, Any]:
    df = pd.DataFrame({"gene": ["a", "b", "c"], "count": [1, 2, 3]})
    df2 = pd.DataFrame({"gene": ["a", "b", "c", "d"], "count": [1, 2, 3, 4]})
    rng = np.random.default_rng(0)
    adata = ad.AnnData(
        X=rng.random((6, 4), dtype=np.float32),
        obs=pd.DataFrame(
            {"cell_type": ["T", "B", "T", "NK", "B", "T"], "batch": ["x", "x", "y", "y", "z", "z"]},
            index=[f"cell{i}" for i in range(6)],
        ),
        var=pd.DataFrame(index=[f"gene{i}" for i in range(4)]),
    )
    df.to_csv(work / "counts.csv", index=False)
    adata.write_h5ad(work / "sample.h5ad")
    paths = []
    for i in range(2):
        path = work / f"file{i}.txt"
        path.write_text(f"file {i}\n")
        paths.append(path)

    artifact = ln.Artifact(work / "counts.csv", key="raw/counts.csv").save()
    h5ads = []
    for i in range(1, 4):
        part = adata[i - 1 :: 3].copy()
        part.obs_names = [f"s{i}_{n}" for n in part.obs_names]
        h5ads.append(ln.Artifact(part, key=f"scrna/sample{i}.h5ad").save())
    collection = ln.Collection(h5ads[:2], key="scrna").save()
    transform = ln.Transform(key="preprocess.py", kind="script").save()
    run = ln.Run(transform).save()
    label = ln.ULabel(name="my-label").save()
    ln.ULabel(name="tissue").save()
    ln.settings.add_instance("shared", settings.uri, user=settings.user, password=settings.password)
    return {
        "ln": ln,
        "pd": pd,
        "np": np,
        "ad": ad,
        "Path": Path,
        "os": os,
        "df": df,
        "df2": df2,
        "adata": adata,
        "paths": paths,
        "artifact": artifact,
        "artifact1": h5ads[0],
        "artifact2": h5ads[1],
        "artifact3": h5ads[2],
        "collection": collection,
        "transform": transform,
        "run": run,
        "label": label,
        "conn": current().connection,
    }


_TESTS = _docstring_tests()


def test_examples_are_collected() -> None:
    # A broken finder would make every docstring "pass" by collecting none.
    assert len(_TESTS) >= 50
    assert {t.name.split(".")[0] for t in _TESTS} == set(PACKAGES)


@pytest.mark.parametrize("test", _TESTS, ids=[t.name for t in _TESTS])
def test_docstring_examples_run(test: doctest.DocTest, world: dict[str, Any]) -> None:
    test.globs = {**world, **test.globs}  # the module's own names win
    runner = doctest.DocTestRunner(checker=_Checker(), optionflags=FLAGS, verbose=False)
    out: list[str] = []
    try:
        runner.run(test, out=out.append, clear_globs=False)
    finally:
        # An HDF5 file an example left open over an in-memory buffer crashes the interpreter
        # at exit (segfault, after every test passed): close them here, whatever the example did.
        for value in test.globs.values():
            if isinstance(value, h5py.File) and value.id.valid:
                value.close()
    failed = runner.summarize(verbose=False).failed
    assert failed == 0, "".join(out)
