"""A small Chrome DevTools Protocol driver for Debian's headless chromium (no Playwright or
Selenium download is possible): open a page, run JavaScript in it, wait for a condition, take a
screenshot. One Browser is one chromium process with its own profile folder, so that local
storage (the pinned trust file, the remembered checkpoint) outlives a page, as in a reader's browser."""

from __future__ import annotations

import base64
import itertools
import json
import struct
import subprocess
import time
from contextlib import ExitStack
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 60.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # a full-page screenshot of a long register page


class BrowserError(Exception):
    """A protocol error, or JavaScript that threw."""


class Browser:
    """chromium --headless with a remote-debugging port, driven over one page's websocket."""

    def __init__(self, chromium: str, profile: Path):
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             "--remote-debugging-port=0", "--remote-allow-origins=*", f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = _debugging_port(profile / "DevToolsActivePort", self.process)
        self._ids = itertools.count(1)
        self._open = ExitStack()  # websockets 17 wants its connection entered as a context manager
        self._socket: ClientConnection = self._open.enter_context(
            connect(_page_socket_url(port), max_size=MAX_MESSAGE_BYTES, open_timeout=START_TIMEOUT_S))
        self.call("Page.enable")
        self.call("Runtime.enable")

    def close(self) -> None:
        self._open.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command and its result; events arriving meanwhile are dropped."""
        message_id = next(self._ids)
        self._socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + CALL_TIMEOUT_S
        while True:
            answer = json.loads(self._socket.recv(timeout=max(deadline - time.monotonic(), 0.01)))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer["result"]

    def size(self, width_px: int, height_px: int = 900) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width_px, height=height_px, deviceScaleFactor=1,
                  mobile=width_px < 600)

    def goto(self, url: str) -> None:
        """Navigate and wait until the document has loaded (its deferred scripts have run)."""
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url))

    def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:200]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 30.0) -> Any:
        """Poll until the expression is truthy; its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.eval(expression)
            except BrowserError:
                value = None  # the page is between documents
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression[:200]} still false after {timeout_s} s")
            time.sleep(0.05)

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            width, height = self.eval("[document.documentElement.clientWidth, document.documentElement.scrollHeight]")
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", **params)["data"]))


def png_size(path: Path) -> tuple[int, int]:
    """A PNG file's (width, height) in pixels, from its header."""
    header = path.read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", header[16:24])


def _debugging_port(active_port_file: Path, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BrowserError(f"chromium exited with {process.returncode}")
        if active_port_file.exists():
            first_line = active_port_file.read_text().split("\n", 1)[0]
            if first_line.isdigit():
                return int(first_line)
        time.sleep(0.05)
    raise BrowserError(f"chromium wrote no {active_port_file.name} within {START_TIMEOUT_S} s")


def _page_socket_url(port: int) -> str:
    """The websocket of the first page target (the about:blank chromium opened)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as answer:
            pages = [t for t in json.load(answer) if t.get("type") == "page"]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.05)
    raise BrowserError("chromium has no page target")
