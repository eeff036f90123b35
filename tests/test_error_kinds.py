"""Every ``kind`` code the package raises is a member of ``ErrorKind``.

The codes are a public, append-only contract: code matches on ``err.kind``. This test
reads the package's source, so a new code cannot be raised without being listed.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

import icechunk_fast as ic
from icechunk_fast.errors import ErrorKind

PACKAGE = Path(ic.__file__).parent


def _literal_kinds() -> dict[str, list[str]]:
    """Every string literal passed as ``kind=`` or assigned to ``default_kind``, by place."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            values: list[ast.expr] = []
            if isinstance(node, ast.Call):
                values = [k.value for k in node.keywords if k.arg == "kind"]
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "default_kind" for t in node.targets
            ):
                values = [node.value]
            for value in values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    found.setdefault(value.value, []).append(where)
                elif isinstance(value, ast.JoinedStr):  # f"invalid-{what}-name"
                    where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
                    found.setdefault(ast.unparse(value), []).append(where)
    return found


def test_every_raised_kind_is_an_error_kind() -> None:
    members = {k.value for k in ErrorKind}
    found = _literal_kinds()
    # numpy's sort kind is not an error code
    found.pop("stable", None)
    dynamic = {k: v for k, v in found.items() if k.startswith("f")}
    for template in dynamic:
        found.pop(template)
    assert len(found) > 20  # the scan does see the package
    unknown = {k: v for k, v in found.items() if k not in members}
    assert not unknown, f"kind codes missing from ErrorKind: {unknown}"
    # the one template in the package: refs.py's f"invalid-{what}-name"
    assert set(dynamic) == {"f'invalid-{what}-name'"}
    assert {"invalid-branch-name", "invalid-tag-name"} <= members


def test_every_error_class_defaults_to_a_member() -> None:
    classes = [c for c in vars(ic).values() if isinstance(c, type) and issubclass(c, Exception)]
    assert len(classes) > 10
    for cls in classes:
        if issubclass(cls, ic.IcechunkError):
            assert cls.default_kind in set(ErrorKind), cls


@pytest.mark.parametrize("kind", [None, "branch-not-found", ErrorKind.TAG_NOT_FOUND])
def test_kind_is_a_plain_string_that_pickles(kind: str | None) -> None:
    err = ic.RefNotFoundError("gone", kind=kind)
    assert type(err.kind) is str
    assert err.kind == (kind or ErrorKind.BRANCH_NOT_FOUND)
    back = pickle.loads(pickle.dumps(err))
    assert back.kind == err.kind and str(back) == str(err)


def test_refs_name_codes_are_members() -> None:
    with pytest.raises(ic.InvalidInputError) as info:
        ic.Repository.create(ic.in_memory_storage()).create_branch("bad name!", "x")
    assert info.value.kind in set(ErrorKind)


def test_message_and_kind_positionally_as_in_icechunk() -> None:
    err = ic.IcechunkError("went wrong", "internal-error")
    assert (err.message, err.kind, str(err)) == ("went wrong", "internal-error", "went wrong")
    assert ic.InvalidInputError("bad", ErrorKind.INVALID_KEY).kind == "invalid-key"
    assert ic.StorageError("down").kind == ErrorKind.STORAGE_ERROR


def test_conflict_errors_take_icechunks_argument_order() -> None:
    err = ic.ConflictError("A", "B")
    assert (err.expected_parent, err.actual_parent) == ("A", "B")
    assert "A" in str(err) and "B" in str(err) and err.kind == ErrorKind.COMMIT_CONFLICT
    failed = ic.RebaseFailedError("SNAP", [])
    assert failed.snapshot == "SNAP" and failed.conflicts == []
    assert isinstance(failed, ic.ConflictError) and failed.kind == ErrorKind.REBASE_FAILED
    back = pickle.loads(pickle.dumps(failed))
    assert (back.snapshot, back.kind, str(back)) == ("SNAP", failed.kind, str(failed))
