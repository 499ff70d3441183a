"""`--server URL` that is not a Puhui server's root (trial 6, finding 19): the command says the URL
looks wrong, and how to give it, rather than relaying a bare "UNKNOWN_REF: Not Found"."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

from tests.api.served_registry import Served
from tests.test_cli_onboarding import init, puhui


class _NotARegistry(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<html>not here</html>"
        self.send_response(404)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_a_server_url_that_is_no_registry_root_is_named_as_the_cause(tmp_path: Path):
    place = init(tmp_path / "registry")
    revoke = ["keys", "revoke", "0123456789abcdef", "--reason", "x", "--trust", place / "trust.json",
              "--signer-key", place / "keys" / "admin.key"]
    served = Served(place).start()
    try:
        with_v1 = puhui(*revoke, "--server", f"{served.url}/v1", ok=False, exit_code=2)
        assert f"no Puhui registry at {served.url}/v1: GET /v1/status answered 404" in with_v1.stderr, with_v1.stderr
        assert "without /v1" in with_v1.stderr and "UNKNOWN_REF" not in with_v1.stderr
        right = puhui(*revoke, "--server", f"{served.url}/", ok=False)  # the root, with a slash: the registry answers
        assert "UNKNOWN_REF" in right.stderr and "0123456789abcdef" in right.stderr, right.stderr
    finally:
        served.stop()
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotARegistry)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{other.server_address[1]}"
        elsewhere = puhui(*revoke, "--server", url, ok=False, exit_code=2)
        assert f"no Puhui registry at {url}: GET /v1/status answered 404" in elsewhere.stderr, elsewhere.stderr
        assert "the server's root" in elsewhere.stderr
    finally:
        other.shutdown()
        other.server_close()
