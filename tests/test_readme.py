"""The README's Python snippets run as written, against the demo registry they name, so that the
docs cannot drift from the code: the HTTP one against a real `puhui serve` (on a free loopback
port instead of 8000), the ledger one with the server stopped."""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import httpx

REPO = Path(__file__).resolve().parents[1]
DEMO_PASSPHRASE = "demo only"


def python_blocks(markdown: str) -> dict[str, str]:
    """The ```python blocks of a Markdown text, by the heading above each."""
    blocks: dict[str, str] = {}
    heading = ""
    for part in re.split(r"(^#+ [^\n]*$|^```python\n.*?^```$)", markdown, flags=re.MULTILINE | re.DOTALL):
        if part.startswith("#"):
            heading = part.lstrip("#").strip()
        elif part.startswith("```python"):
            blocks[heading] = part.removeprefix("```python\n").removesuffix("```")
    return blocks


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """What `bash scripts/demo` leaves in the repository's root: ./demo-registry."""
    root = tmp_path_factory.mktemp("readme")
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=DEMO_PASSPHRASE)
    subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "demo", "demo-registry",
                    "--records-per-batch", "20", "--key-strength", "interactive"],
                   cwd=root, env=env, check=True, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)
    return root


def serve(directory: Path) -> tuple[subprocess.Popen, int]:
    """`puhui serve` on the demo registry, as the README starts it, on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, PUHUI_KEY_PASSPHRASE=DEMO_PASSPHRASE)
    process = subprocess.Popen([str(Path(sys.executable).parent / "puhui"), "serve", "--dir", str(directory),
                                "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/checkpoint", timeout=1).status_code == 200:
                return process, port
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("puhui serve did not start")


def run_snippet(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_the_readme_snippets_run_as_written(demo):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = python_blocks(readme)
    assert set(blocks) >= {"A platform's client (HTTP)", "The ledger in Python"}
    assert "PUHUI_KEY_PASSPHRASE='demo only' .venv/bin/puhui serve --dir demo-registry --port 8000" in readme
    server, port = serve(demo / "demo-registry")
    try:
        http = blocks["A platform's client (HTTP)"]
        assert "127.0.0.1:8000" in http
        done = run_snippet(http.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), demo)
        assert done.returncode == 0, done.stderr
        seq, effects = done.stdout.split(" ", 1)
        assert int(seq) > 100 and "serials" in effects
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
    done = run_snippet(blocks["The ledger in Python"], demo)
    assert done.returncode == 0, done.stderr
    first, proof = done.stdout.splitlines()[:2]
    hashes = ast.literal_eval(proof)  # the inclusion proof, printed: a list of 32-byte hashes
    assert int(first.split()[0]) == int(seq) + 1 and hashes and all(len(h) == 32 for h in hashes)
