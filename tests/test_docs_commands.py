"""Every shell and Python block of README.md and docs/walkthrough.md runs as written, in order, so
that the docs cannot drift from the code.

How a document runs:
- Its fenced blocks are read in order: ```bash, ```sh, ```shell and ```console (only the lines
  after a `$ ` prompt, and after a trailing backslash the next line, without its `> ` prompt; the
  rest is what the commands print) run in bash with `set -eo pipefail`; ```python runs in this
  Python.
- They run in a fresh temporary directory that stands for the clone's root: every top-level entry
  of the repository is linked there (`examples/`, `scripts/`, ...), and `.venv` links to the
  environment running this test, so `. .venv/bin/activate` works as the README says. The shell's
  exported variables and its directory carry over from block to block (passphrases are the ones the
  document itself exports: none is inherited from this process).
- A line `<!-- docs-test: MARKER -->` right above a block's fence changes how it runs:
  `skip: REASON` does not run it (EXPECTED_SKIPS lists every one, so a new one is a decision);
  `serve` starts its one command in the background and waits until it answers, as the reader's
  second terminal would; `stopped` stops that server first (the block needs the registry's single
  writer). The one substitution: the port. A document's servers listen on 127.0.0.1:8000; here
  on a free port, and `127.0.0.1:8000` and `--port 8000` in every block are rewritten to it.
- README.md's Python snippets need `./demo-registry`, which the skipped quick start (`bash
  scripts/demo`) makes: the fixture makes it with `puhui demo` as scripts/demo does (smaller).

A failing block fails the test with its document, line and the command that failed.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
SHELL_LANGUAGES = ("bash", "sh", "shell", "console")
DOC_PORT = 8000
BLOCK_TIMEOUT_S = 300
SERVER_START_TIMEOUT_S = 60
MARKER = re.compile(r"<!-- docs-test: (skip|serve|stopped)(?::\s*(.*?))? -->")
FENCE = re.compile(r"^```(\w*)\s*$")

# Every block a document marks as not run, by its first line: each is a decision, not a way out.
EXPECTED_SKIPS = {
    "README.md": [
        "bash scripts/demo    # install; a registry on SQLite with a demo history; export; the verifier's report",
        "export PUHUI_KEY_PASSPHRASE=...        # or answer the prompt; never a command-line argument",
        "puhui methodologies DIR [--register]    # the shipped library against the log; the admin publishes it",
        "puhui keys new platform wuhan-platform --out wuhan.key    # an encrypted key file: prints its key id and public key",
        "puhui keys new validator hubei-vb --out vb.key     # a validation body's key; `keys new expert NAME` a panel expert's",
    ],
    "docs/walkthrough.md": [
        "python3 -m venv .venv && .venv/bin/python -m pip install -q -e .",
    ],
}


@dataclass(frozen=True, slots=True)
class Block:
    document: str
    line: int          # the line of the opening fence, 1-based
    language: str
    text: str
    marker: str | None  # skip, serve, stopped
    reason: str | None

    @property
    def where(self) -> str:
        return f"{self.document} line {self.line}"

    def commands(self) -> str:
        """The shell text to run: a console block's prompted commands, any other block whole."""
        if self.language != "console":
            return self.text
        commands, continuing = [], False
        for line in self.text.splitlines():
            if continuing or line.startswith("$ "):
                command = line[2:] if continuing and line.startswith("> ") or not continuing else line
                commands.append(command)
                continuing = command.endswith("\\")
        return "\n".join(commands) + "\n"


def blocks(document: str) -> list[Block]:
    """The runnable blocks of a document (shell and Python), in order."""
    lines = (REPO / document).read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None or not opening.group(1):
            index += 1
            continue
        end = next((i for i in range(index + 1, len(lines)) if lines[i].startswith("```")), None)
        assert end is not None, f"{document} line {index + 1}: a fence that never closes"
        language = opening.group(1)
        marker = MARKER.fullmatch(lines[index - 1].strip()) if index else None
        if language in SHELL_LANGUAGES or language == "python":
            found.append(Block(document, index + 1, language, "\n".join(lines[index + 1:end]) + "\n",
                               marker and marker.group(1), marker and marker.group(2)))
        index = end + 1
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Reader:
    """A reader at a terminal in the clone's root: one shell whose exported variables and directory
    carry over, and at most one server in a second terminal."""

    def __init__(self, root: Path, port: int):
        self.root, self.port = root, port
        self.state = root.parent / f"{root.name}.state"
        self.state.mkdir()
        (self.state / "cwd").write_text(str(root))
        self.environment = {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}
        self.environment |= {"PYTHONPATH": str(REPO), "COLUMNS": "100", "PYTHONDONTWRITEBYTECODE": "1"}
        self.server: subprocess.Popen | None = None

    def with_port(self, text: str) -> str:
        return (text.replace(f"127.0.0.1:{DOC_PORT}", f"127.0.0.1:{self.port}")
                .replace(f"--port {DOC_PORT}", f"--port {self.port}"))

    def _script(self, commands: str, *, keep_state: bool) -> str:
        state = shlex.quote(str(self.state))
        prologue = (f"set -eo pipefail\n[ -f {state}/env ] && source {state}/env\ncd \"$(cat {state}/cwd)\"\n"
                    "trap 'echo \"docs-test: this command failed: $BASH_COMMAND\" >&2' ERR\n")
        epilogue = f"\nexport -p > {state}/env\npwd > {state}/cwd\n" if keep_state else ""
        return prologue + commands + epilogue

    def run(self, block: Block) -> None:
        if block.marker == "stopped":
            self.stop()
        if block.marker == "serve":
            return self.serve(block)
        if block.language == "python":
            command = [sys.executable, "-c", self.with_port(block.text)]
            cwd = Path((self.state / "cwd").read_text().strip())
            environment = self._exported()
        else:
            command = ["bash", "-c", self._script(self.with_port(block.commands()), keep_state=True)]
            cwd, environment = self.root, self.environment
        done = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True,
                              timeout=BLOCK_TIMEOUT_S, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            pytest.fail(f"{block.where} ({block.language}) failed with exit {done.returncode}:\n"
                        f"{done.stderr[-4000:]}\n--- its output ---\n{done.stdout[-2000:]}", pytrace=False)

    def _exported(self) -> dict[str, str]:
        """The shell's exported variables as the blocks so far left them (a Python block's environment)."""
        env_file = self.state / "env"
        if not env_file.exists():
            return self.environment
        printed = subprocess.run(["bash", "-c", f"source {shlex.quote(str(env_file))}; env -0"], env=self.environment,
                                 capture_output=True, check=True).stdout.decode()
        return dict(item.split("=", 1) for item in printed.split("\0") if "=" in item)

    def serve(self, block: Block) -> None:
        commands = [c for c in block.commands().splitlines() if c.strip() and not c.lstrip().startswith("#")]
        assert len(commands) == 1, f"{block.where}: a serve block holds one command"
        assert f"127.0.0.1:{DOC_PORT}" in block.text or f"--port {DOC_PORT}" in block.text, (
            f"{block.where}: a server the walkthrough starts listens on port {DOC_PORT}")
        self.stop()
        script = self._script(self.with_port(commands[0]), keep_state=False)
        # A session of its own: Ctrl-C reaches the shell and the server in it, as in a terminal.
        self.server = subprocess.Popen(["bash", "-c", script], cwd=self.root, env=self.environment,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=open(self.state / "server.log", "ab"), start_new_session=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                pytest.fail(f"{block.where}: the server exited with {self.server.returncode}:\n"
                            f"{(self.state / 'server.log').read_text()[-3000:]}", pytrace=False)
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/v1/checkpoint", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"{block.where}: the server did not answer within {SERVER_START_TIMEOUT_S} s", pytrace=False)

    def stop(self) -> None:
        """Ctrl-C in the server's terminal."""
        if self.server is None:
            return
        os.killpg(self.server.pid, signal.SIGINT)
        try:
            self.server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.server.pid, signal.SIGKILL)
            self.server.wait(10)
        self.server = None


def clone_root(tmp_path: Path) -> Path:
    """A directory that stands for the clone's root (module docstring)."""
    root = tmp_path / "clone"
    root.mkdir()
    for entry in REPO.iterdir():
        if not entry.name.startswith(".") and entry.name not in ("demo-registry", "demo-bundle"):
            (root / entry.name).symlink_to(entry)
    (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return root


def run_document(document: str, root: Path) -> None:
    reader = Reader(root, free_port())
    skipped = []
    try:
        for block in blocks(document):
            if block.marker == "skip":
                assert block.reason, f"{block.where}: a skip says why"
                skipped.append(block.text.splitlines()[0] if block.language != "console" else
                               block.commands().splitlines()[0])
                continue
            reader.run(block)
    finally:
        reader.stop()
    assert skipped == EXPECTED_SKIPS[document], f"{document}: the blocks it skips changed: {skipped}"


def test_the_walkthrough_runs_as_written(tmp_path):
    root = clone_root(tmp_path)
    before = {entry.name for entry in root.iterdir()}
    run_document("docs/walkthrough.md", root)
    # Its keys, registry and laptop folder are in a folder of their own, not in the clone's work tree.
    assert {entry.name for entry in root.iterdir()} == before
    assert (tmp_path / "puhui-trial" / "laptop" / "admin.key").is_file()


def test_the_readme_runs_as_written(tmp_path):
    root = clone_root(tmp_path)
    # What the skipped quick start's `bash scripts/demo` leaves for the snippets: ./demo-registry
    # (scripts/demo runs `puhui demo demo-registry`; smaller batches and cheaper keys here).
    environment = {k: v for k, v in os.environ.items() if "PASSPHRASE" not in k}
    subprocess.run([str(Path(sys.executable).parent / "puhui"), "demo", "demo-registry", "--records-per-batch", "20",
                    "--key-strength", "interactive"], cwd=root, check=True, capture_output=True, timeout=600,
                   env=environment | {"PUHUI_KEY_PASSPHRASE": "demo only", "PYTHONPATH": str(REPO)},
                   stdin=subprocess.DEVNULL)
    run_document("README.md", root)


def test_every_marker_is_read():
    """A marker the runner would not read (a typo, a blank line between it and its fence) fails here."""
    for document in EXPECTED_SKIPS:
        lines = (REPO / document).read_text(encoding="utf-8").splitlines()
        marked = {block.line - 1 for block in blocks(document) if block.marker}
        for number, line in enumerate(lines, 1):
            if "docs-test:" in line:
                assert MARKER.fullmatch(line.strip()) and number in marked, f"{document} line {number}: {line}"
