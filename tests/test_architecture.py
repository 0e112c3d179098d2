"""The layout's promises: imports go one way and never come back round.

The contracts live in `pyproject.toml` (`[tool.importlinter]`) so `lint-imports` checks
the same thing from a shell. Import Linter reads every import statement, those inside
functions too, so a cycle cannot hide in a function-level import.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import grimp
from importlinter.api import read_configuration

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "conversations"


def test_imports_keep_the_contracts():
    lint_imports = Path(sys.executable).with_name("lint-imports")

    result = subprocess.run(
        [lint_imports, "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_imports_one_that_imports_it_back():
    """Between any two modules, not only siblings: the contracts check siblings only."""
    graph = grimp.build_graph(PACKAGE, cache_dir=None)

    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                # Each cycle once, however many of its imports found it: from its first name.
                start = back.index(min(back))
                cycle = (*back[start:], *back[:start], back[start])
                cycles.add(" -> ".join(cycle))

    assert not cycles, "Import cycles:\n" + "\n".join(sorted(cycles))


def layered_modules() -> set[str]:
    configuration = read_configuration(str(ROOT / "pyproject.toml"))
    (layers,) = [
        contract["layers"]
        for contract in configuration["contracts_options"]
        if contract["type"] == "layers"
    ]
    return {name.strip() for layer in layers for name in re.split(r"[:|]", layer)}


def test_every_module_is_in_a_layer():
    """A module in no layer could import anything: the layers contract would not see it.

    A package's own `__init__` may stay out when it imports nothing of the app (it only
    holds a docstring); its modules are listed one by one.
    """
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    layered = layered_modules()

    def in_a_layer(module: str) -> bool:
        return any(module == name or module.startswith(f"{name}.") for name in layered)

    unlisted = {
        module
        for module in graph.modules
        if not in_a_layer(module)
        and not (
            graph.find_children(module) and not graph.find_modules_directly_imported_by(module)
        )
    }

    assert not unlisted, "Add to a layer in pyproject.toml: " + ", ".join(sorted(unlisted))
