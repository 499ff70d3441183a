"""The floors of the house, read from the source files' imports (function-level ones too):
keys and ledger at the bottom, quantify above them, the service floor above that, api and cli on
top side by side; verifier, the auditors' second implementation, stands alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What each package of ours may import (itself included).
ALLOWED = {
    "keys": {"keys"},
    "ledger": {"keys", "ledger"},
    "quantify": {"keys", "ledger", "quantify"},
    "service": {"keys", "ledger", "quantify", "service"},
    "api": {"keys", "ledger", "quantify", "service", "api"},
    "cli": {"keys", "ledger", "quantify", "service", "cli"},
    "verifier": {"verifier"},
}
# The reaches across the top floor: `puhui serve` starts the HTTP server; the signing commands'
# --server submits through the API's own client, which checks every receipt.
EXCEPTIONS = {("cli/main.py", "api.server")}


def imported_modules(root: Path, path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, relative ones resolved within its package."""
    package = path.relative_to(root).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if node.module is None:  # from . import name: name may be a module
                found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, module))
    return found


def offending_imports(root: Path) -> list[str]:
    offences = []
    for package, allowed in ALLOWED.items():
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            for line, module in imported_modules(root, path):
                top = module.split(".")[0]
                if top in ALLOWED and top not in allowed and (relative, module) not in EXCEPTIONS:
                    offences.append(f"{relative}:{line} imports {module} ({package} may import only "
                                    f"{', '.join(sorted(allowed))})")
    return offences


def test_every_package_imports_only_the_floors_below_it():
    assert offending_imports(ROOT) == []


def test_the_check_names_the_offending_file_and_import(tmp_path):
    for package in ALLOWED:
        (tmp_path / package).mkdir()
    (tmp_path / "quantify" / "report.py").write_text("def f():\n    from service.accounts import subject_account\n")
    (tmp_path / "api" / "app.py").write_text("from cli.main import app\n")
    (tmp_path / "cli" / "main.py").write_text("def serve():\n    from api.server import run\n")
    (tmp_path / "cli" / "demo.py").write_text("from api import app\n")
    assert offending_imports(tmp_path) == [
        "quantify/report.py:2 imports service.accounts (quantify may import only keys, ledger, quantify)",
        "api/app.py:1 imports cli.main (api may import only api, keys, ledger, quantify, service)",
        "cli/demo.py:1 imports api (cli may import only cli, keys, ledger, quantify, service)",
    ]
