"""The public surface: ``kmsforensics.__all__`` and the package's exceptions and warnings."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import kmsforensics as kf
from kmsforensics import errors

PACKAGE = Path(kf.__file__).parent
#: Names of design.md's public API contract that exist in this package today.
CONTRACT = ("Case", "LogParseError", "UnknownFormatError", "blast_radius", "build_graph")
CONTRACT_FUNCTIONS = ("detect", "load", "trace", "who_accessed")


def test_all_is_sorted_functions_and_classes_each_documented() -> None:
    names = list(kf.__all__)
    assert names == sorted(set(names))
    for name in names:
        value = getattr(kf, name)
        assert inspect.isclass(value) or inspect.isfunction(value), name
        own = value.__doc__ or ""
        assert own.strip(), f"kf.{name} has no docstring of its own"


def test_all_keeps_the_contract_names() -> None:
    assert set(CONTRACT + CONTRACT_FUNCTIONS) <= set(kf.__all__)


def exception_classes_defined(path: Path) -> list[str]:
    """Classes in a source file whose bases name an exception or a warning."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            bases = [ast.unparse(b) for b in node.bases]
            if any(b.endswith(("Error", "Warning", "Exception")) for b in bases):
                found.append(node.name)
    return found


def test_every_exception_and_warning_lives_in_errors_py() -> None:
    elsewhere = {
        str(path.relative_to(PACKAGE)): names
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "errors.py" and (names := exception_classes_defined(path))
    }
    assert elsewhere == {}


def test_every_error_is_exported_drawn_in_the_tree_and_documented() -> None:
    classes = {
        name: value
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert set(classes) == set(exception_classes_defined(PACKAGE / "errors.py"))
    tree = errors.__doc__ or ""
    for name, value in classes.items():
        assert name in kf.__all__, name
        assert getattr(kf, name) is value
        assert re.search(rf"^[\s│├└─]*{name}\b", tree, re.M), f"{name} is not in the tree"
        assert (value.__doc__ or "").strip(), name
        assert issubclass(value, (kf.KmsForensicsError, UserWarning)), name


def test_old_homes_still_export_the_moved_errors() -> None:
    from kmsforensics import datasets, detections, report, store
    from kmsforensics.detections import registry
    from kmsforensics.graph import query

    assert store.StoreError is kf.StoreError
    assert datasets.DatasetNotFoundError is kf.DatasetNotFoundError
    assert report.TemplateNotFoundError is kf.TemplateNotFoundError
    assert registry.UnknownRuleError is kf.UnknownRuleError
    assert detections.DetectionNote is kf.DetectionNote
    assert query.UnknownReferenceError is kf.UnknownReferenceError
    assert query.AmbiguousReferenceError is kf.AmbiguousReferenceError
