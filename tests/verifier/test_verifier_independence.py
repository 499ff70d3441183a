"""verifier/ stands alone: it imports nothing of the registry, and only the crypto and
canonical-JSON libraries besides the standard library; rich stays in the report and the CLI, and
Dask's client in the runner that uses it (an optional extra)."""

import ast
import os
import sys

VERIFIER = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "verifier")
FORBIDDEN = {"ledger", "api", "keys", "cli", "quantify"}
PRESENTATION = {"report.py", "cli.py"}
CLUSTER = {"dask_runner.py"}


def imported_modules(path):
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                yield "verifier"
            else:
                yield node.module.split(".")[0]


def test_imports():
    modules = sorted(name for name in os.listdir(VERIFIER) if name.endswith(".py"))
    assert len(modules) > 10
    for name in modules:
        allowed = set(sys.stdlib_module_names) | {"verifier", "nacl", "rfc8785"}
        if name in PRESENTATION:
            allowed.add("rich")
        if name in CLUSTER:
            allowed.add("distributed")
        for module in imported_modules(os.path.join(VERIFIER, name)):
            assert module not in FORBIDDEN, f"verifier/{name} imports {module}"
            assert module in allowed, f"verifier/{name} imports {module}"
