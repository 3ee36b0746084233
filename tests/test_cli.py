"""`lineage cypher`, `lineage describe`, `lineage view` and the uid resolver behind them, against
the session's Neo4j: in-process through `lineage.cli.main`, and once as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lineage as ln
from lineage.cli import main, parse_params
from lineage._resolve import record_by_uid
from tests.conftest import make_artifact

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def graph(storage: Path, cli_env: dict[str, str]) -> dict[str, Any]:
    """Two artifacts, a collection in two versions, and a run that read the latest one."""
    a = make_artifact(storage, "cli/a.txt")
    b = make_artifact(storage, "cli/b.txt")
    first = ln.Collection([a], key="cli/set").save()
    latest = first.append(b).save()
    run = ln.track("cli-pipeline")
    ln.Collection.get(latest.uid, is_run_input=True)
    out = make_artifact(storage, "cli/out.txt")
    ln.finish()
    return {"a": a, "b": b, "first": first, "latest": latest, "run": run, "out": out}


def _lines(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


# -- parameters --------------------------------------------------------------------------------


def test_params_are_json_when_they_parse_else_strings() -> None:
    assert parse_params(["n=5", "f=0.5", "ok=true", "none=null", "xs=[1, 2]", 'm={"a": 1}']) == {
        "n": 5, "f": 0.5, "ok": True, "none": None, "xs": [1, 2], "m": {"a": 1},
    }  # fmt: skip
    assert parse_params(["key=demo/scrna", "since=2026-01-01", 'q="10"', "e=", "eq=a=b"]) == {
        "key": "demo/scrna", "since": "2026-01-01", "q": "10", "e": "", "eq": "a=b",
    }  # fmt: skip
    assert parse_params(None) == {}


@pytest.mark.parametrize("bad", ["no-equals-sign", "=5", " =x"])
def test_a_param_without_a_name_is_an_error(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cypher", "RETURN 1 AS x", "--param", bad]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lineage: error: ") and "name=value" in err


# -- lineage cypher ------------------------------------------------------------------------------


def test_cypher_prints_a_table_with_parameters(
    graph: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    query = ("MATCH (a:Artifact) WHERE a.key STARTS WITH $prefix "
             "RETURN a.key AS key, a.uid AS uid ORDER BY key")  # fmt: skip
    assert main(["cypher", query, "--param", "prefix=cli/"]) == 0
    rows = _lines(capsys.readouterr().out)
    assert rows[0] == ["key", "uid"]
    assert rows[1:] == [[graph[n].key, graph[n].uid] for n in ("a", "b", "out")]


def test_cypher_param_values_are_typed(cli_env: dict[str, str], db: ln.Instance, capsys) -> None:
    args = ["cypher", "RETURN $n + 1 AS next, $s AS s, size($xs) AS n_xs, $flag AS flag",
            "-p", "n=41", "-p", "s=2026-01-01", "-p", "xs=[1, 2, 3]",
            "--param", "flag=false"]  # fmt: skip
    assert main(args) == 0
    assert _lines(capsys.readouterr().out) == [
        ["next", "s", "n_xs", "flag"],
        ["42", "2026-01-01", "3", "False"],
    ]


def test_cypher_empty_result_says_no_rows(graph: dict[str, Any], capsys) -> None:
    query = "MATCH (a:Artifact {key: $key}) RETURN a.uid AS uid"
    assert main(["cypher", query, "--param", "key=no/such/key"]) == 0
    assert capsys.readouterr().out.strip() == "(no rows)"


def test_cypher_traverses_the_graph(graph: dict[str, Any], capsys) -> None:
    from graph.cookbook import UPSTREAM

    assert main(["cypher", UPSTREAM, "--param", f"uid={graph['out'].uid}"]) == 0
    out = capsys.readouterr().out
    for name in ("run", "latest", "a", "b"):
        assert graph[name].uid in out
    assert graph["first"].uid not in out


def test_bad_cypher_is_an_error_on_stderr(cli_env: dict[str, str], db: ln.Instance, capsys) -> None:
    assert main(["cypher", "MATCH (n RETURN n"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("lineage: error: ") and "SyntaxError" in captured.err
    assert "Traceback" not in captured.err


def test_missing_parameter_is_an_error(cli_env: dict[str, str], db: ln.Instance, capsys) -> None:
    assert main(["cypher", "RETURN $absent AS x"]) == 1
    assert capsys.readouterr().err.startswith("lineage: error: ")


# -- the resolver ------------------------------------------------------------------------------


def test_record_by_uid_finds_each_registry(graph: dict[str, Any]) -> None:
    transform = graph["run"].transform
    for record in (graph["a"], graph["latest"], graph["run"], transform):
        found = record_by_uid(record.uid)
        assert type(found) is type(record) and found.uid == record.uid
    assert record_by_uid(graph["run"].uid[:12]).uid == graph["run"].uid
    # A version family's stem gives its latest version; a full uid gives that version.
    assert record_by_uid(graph["first"].uid[:16]).uid == graph["latest"].uid
    assert record_by_uid(graph["first"].uid).uid == graph["first"].uid


def test_record_by_uid_unknown_names_the_uid(graph: dict[str, Any]) -> None:
    with pytest.raises(ln.errors.DoesNotExist, match="NoSuchUid"):
        record_by_uid("NoSuchUid")
    with pytest.raises(ln.errors.InvalidArgument):
        record_by_uid("  ")


def test_record_by_uid_prefix_shared_by_two_registries_is_ambiguous(graph: dict[str, Any]) -> None:
    # Give the run a uid that starts like the artifact's (uids are random, so force it).
    artifact, run = graph["a"], graph["run"]
    ln.cypher("MATCH (r:Run {uid: $old}) SET r.uid = $new", old=run.uid,
              new=artifact.uid[:8] + run.uid[8:])  # fmt: skip
    with pytest.raises(ln.errors.InvalidArgument, match="ambiguous") as exc:
        record_by_uid(artifact.uid[:8])
    assert "Artifact" in str(exc.value) and "Run" in str(exc.value)
    assert record_by_uid(artifact.uid).uid == artifact.uid  # the full uid is not ambiguous


# -- lineage describe ------------------------------------------------------------------------------


def test_describe_prints_what_describe_prints(graph: dict[str, Any], capsys) -> None:
    latest = graph["latest"]
    latest.describe()
    expected = capsys.readouterr().out
    assert main(["describe", latest.uid[:12]]) == 0
    out = capsys.readouterr().out
    assert out == expected
    assert "Collection" in out and "cli/set" in out and "cli/b.txt" in out


def test_describe_shows_a_records_feature_values(graph: dict[str, Any], capsys) -> None:
    ln.Feature(name="temperature", dtype=float).save()
    ln.Feature(name="tissue", dtype=ln.ULabel).save()
    ln.Feature(name="epochs", dtype=int).save()
    ln.ULabel(name="lung").save()
    graph["a"].features.add_values({"temperature": 21.5, "tissue": "lung"})
    graph["run"].features.add_values({"epochs": 3})
    assert main(["describe", graph["a"].uid]) == 0
    out = capsys.readouterr().out
    assert "Features" in out and "temperature: 21.5" in out and "tissue: 'lung'" in out
    assert main(["describe", graph["run"].uid[:12]]) == 0
    out = capsys.readouterr().out
    assert "Features" in out and "epochs: 3" in out
    assert main(["describe", graph["b"].uid]) == 0
    assert "Features" not in capsys.readouterr().out  # no values, no branch


def test_describe_unknown_uid_is_an_error(graph: dict[str, Any], capsys) -> None:
    assert main(["describe", "ZZZZZZZZZZZZ"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("lineage: error: ") and "'ZZZZZZZZZZZZ'" in captured.err
    assert captured.out == ""


# -- lineage view ------------------------------------------------------------------------------


def test_view_passes_output_and_depth(
    graph: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def fake_view(self: ln.Collection, **kwargs: Any) -> Path:
        calls.append((self.uid, kwargs))
        return Path(kwargs["path"] or "default.html")

    monkeypatch.setattr(ln.Collection, "view_lineage", fake_view)
    out = tmp_path / "set.html"
    assert main(["view", graph["latest"].uid, "-o", str(out), "--depth", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert calls == [(graph["latest"].uid, {"path": str(out), "depth": 2})]
    assert main(["view", graph["latest"].uid]) == 0
    assert calls[-1][1] == {"path": None, "depth": None}


def test_view_writes_an_html_file(graph: dict[str, Any], tmp_path: Path, capsys) -> None:
    out = tmp_path / "lineage.html"
    assert main(["view", graph["latest"].uid, "-o", str(out), "--depth", "3"]) == 0, (
        capsys.readouterr().err
    )
    printed = capsys.readouterr().out.strip()
    assert Path(printed).resolve() == out.resolve()
    html = out.read_text()
    assert "<html" in html.lower() and "cli/set" in html
    # A run, by a uid prefix, with no depth bound.
    run_page = tmp_path / "run.html"
    assert main(["view", graph["run"].uid[:10], "-o", str(run_page)]) == 0
    assert Path(capsys.readouterr().out.strip()).resolve() == run_page.resolve()
    assert graph["run"].uid in run_page.read_text()


def test_view_bad_depth_is_an_error(graph: dict[str, Any], tmp_path: Path, capsys) -> None:
    assert main(["view", graph["latest"].uid, "-o", str(tmp_path / "x.html"), "--depth", "-1"]) == 1
    assert capsys.readouterr().err.startswith("lineage: error: ")
    assert not (tmp_path / "x.html").exists()


def test_view_unknown_uid_is_an_error(graph: dict[str, Any], tmp_path: Path, capsys) -> None:
    assert main(["view", "ZZZZZZZZZZZZ", "-o", str(tmp_path / "x.html")]) == 1
    assert "'ZZZZZZZZZZZZ'" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()


# -- a real process -------------------------------------------------------------------------------


def test_cli_as_a_subprocess(graph: dict[str, Any], cli_env: dict[str, str]) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "lineage", *args],
            capture_output=True, text=True, env=cli_env, cwd=ROOT, timeout=120,
        )  # fmt: skip

    done = cli("cypher", "MATCH (c:Collection {key: $key}) RETURN c.uid AS uid ORDER BY uid",
               "--param", "key=cli/set")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout) == [["uid"], [graph["first"].uid], [graph["latest"].uid]]

    failed = cli("describe", "ZZZZZZZZZZZZ")
    assert failed.returncode == 1
    assert failed.stderr.startswith("lineage: error: ") and "Traceback" not in failed.stderr
