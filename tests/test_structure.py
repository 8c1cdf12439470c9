"""The architecture's rules, checked on the source: primitives below, algorithms above, imports pointing down."""

import ast
import importlib
import pathlib
import re

import pytest

from keras_nsde import backend

pytestmark = pytest.mark.all_backends

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "keras_nsde"
FRAMEWORKS = ("tensorflow", "jax", "torch")


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def imported_modules(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_backend_modules_import_nothing_from_the_layers_above():
    upward = re.compile(r"^keras_nsde\.(solvers|gradients|layers|models|evaluation)\b")
    offenders = [
        f"{path.relative_to(PACKAGE)}: {name}"
        for path, tree in modules()
        if "backend" in path.relative_to(PACKAGE).parts
        for name in imported_modules(tree)
        if upward.match(name)
    ]
    assert offenders == []


def test_only_backend_modules_import_a_framework_at_module_level():
    """Outside keras_nsde/backend, tensorflow, jax and torch are imported where used, never on import.

    Adapters named after their framework (`evaluation/attacks_torch.py`) are
    backend modules too: they are imported only on that backend.
    """
    offenders = []
    for path, tree in modules():
        if "backend" in path.relative_to(PACKAGE).parts or path.stem.endswith(FRAMEWORKS):
            continue
        for node in tree.body:  # module level only
            names = imported_modules(ast.Module(body=[node], type_ignores=[]))
            offenders += [f"{path.relative_to(PACKAGE)}: {n}" for n in names if n.split(".")[0] in FRAMEWORKS]
    assert offenders == []


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_every_backend_module_exports_every_primitive(name):
    try:
        module = importlib.import_module(f"keras_nsde.backend.{name}")
    except ImportError:
        pytest.skip(f"{name} is not installed")
    missing = [primitive for primitive in backend.PRIMITIVES if not callable(getattr(module, primitive, None))]
    assert missing == []


def test_no_function_has_more_than_six_parameters_without_a_default():
    offenders = []
    for path, tree in modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                positional = node.args.posonlyargs + node.args.args
                required = len(positional) - len(node.args.defaults)
                required += sum(default is None for default in node.args.kw_defaults)
                if positional and positional[0].arg in ("self", "cls"):
                    required -= 1
                if required > 6:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({required})")
    assert offenders == []


def test_each_gradient_algorithm_is_written_once():
    """One function per adjoint, in keras_nsde/gradients, and no backend module that knows the solvers."""
    definitions = [
        f"{path.relative_to(PACKAGE)}:{node.name}"
        for path, tree in modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef) and node.name in ("pathwise_solve", "reversible_solve")
    ]
    assert sorted(definitions) == ["gradients/pathwise.py:pathwise_solve", "gradients/reversible.py:reversible_solve"]
