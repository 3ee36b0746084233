"""One error tree: every public error is importable from `lineage.errors`, has `LineageError` at
its root, and is also the builtin lamindb users catch; the CLI catches the root."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import lineage as ln
from lineage import errors as E
from lineage.cli import main
from tests.conftest import make_artifact


def test_every_public_error_has_lineage_error_at_its_root() -> None:
    classes = [getattr(E, name) for name in E.__all__]
    assert all(inspect.isclass(c) and issubclass(c, Exception) for c in classes)
    assert [c.__name__ for c in classes if not issubclass(c, E.LineageError)] == []
    # The errors the graph layer raises while writing are part of the public tree now.
    assert {"VersionTagExists", "MissingTarget", "DuplicateContent"} <= set(E.__all__)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (E.DoesNotExist, LookupError),
        (E.MultipleResultsFound, LookupError),
        (E.ValidationError, ValueError),
        (E.InvalidArgument, ValueError),
        (E.NotSaved, ValueError),
        (E.FieldValidationError, ValueError),
        (E.VersionTagExists, ValueError),
        (E.DataError, ValueError),
        (E.InvalidType, TypeError),
        (E.MissingFile, FileNotFoundError),
        (E.NotSupported, NotImplementedError),
    ],
)
def test_errors_are_the_builtins_lamindb_users_catch(error: type, builtin: type) -> None:
    assert issubclass(error, builtin) and issubclass(error, E.LineageError)


def test_an_unsaved_record_is_not_saved(storage: Path) -> None:
    with pytest.raises(E.NotSaved, match="not saved yet"):
        ln.ULabel(name="draft").delete()


def test_wrong_types_are_invalid_type(storage: Path) -> None:
    with pytest.raises(E.InvalidType, match="Collection\\(revises=.*Collection, not ULabel"):
        ln.Collection([make_artifact(storage, "a.txt")], key="c", revises=ln.ULabel(name="x"))
    with pytest.raises(E.InvalidType, match="list of records"):
        ln.save("not a list")


def test_a_loader_error_reaches_users_as_a_data_error(storage: Path) -> None:
    bad = make_artifact(storage, "fake.h5ad", "not an hdf5 file\n")
    collection = ln.Collection([bad], key="fake").save()
    # The loaders' own ValueError ("not a readable .h5ad") arrives as lineage's DataError...
    with pytest.raises(E.DataError, match=rf"{bad.uid}\.h5ad is not a readable"):
        collection.mapped()
    with pytest.raises(E.InvalidArgument, match="join"):
        collection.load(join="sideways")
    # ...while a reader's own error type (h5py's OSError) passes through for those who catch it.
    with pytest.raises(OSError, match="is not a readable"):
        bad.load()


def test_settings_errors_are_lineage_errors(storage: Path) -> None:
    with pytest.raises(E.InvalidType, match="ln.settings.storage"):
        ln.settings.storage = 42  # type: ignore[assignment]
    with pytest.raises(E.InvalidArgument, match="ln.settings.storage"):
        ln.settings.storage = ""


def test_the_cli_catches_the_root(storage: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An error of ours is one line on stderr and exit status 1, never a traceback.
    assert main(["describe", "no-such-uid"]) == 1
    assert main(["cypher", "RETURN 1", "--param", "novalue"]) == 1
    err = capsys.readouterr().err
    assert err.count("lineage: error:") == 2 and "Traceback" not in err
