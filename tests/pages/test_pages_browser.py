"""The public pages in a real browser: `puhui serve` as a process on a small registry made through
the API, each page shot by Debian's headless chromium at 1280 and 360 px into the test's tmp
folder (skipped when chromium is not installed: `apt-get install -y chromium`; Chinese text needs
a CJK font such as fonts-wqy-microhei)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from cdp import png_size
from page_history import platform_with_issuance  # puts tests/api, served_registry's folder, on the path
from served_registry import Served, init_registry_dir
from world import actor

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                                "(apt-get install -y chromium): no screenshots of the pages")
WIDTHS_PX = (1280, 360)
PAGES = {"home": "/", "home-en": "/?lang=en", "issuances": "/issuances", "retirements": "/retirements",
         "account": "/accounts/wuhan-platform", "methodology": "/methodologies/HB-GT-METRO", "serial": "/serials/1200000",
         "holds": "/holds", "me": "/me", "not-found": "/claims/nope"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = init_registry_dir(tmp_path_factory.mktemp("served") / "registry", log_format=2)
    server = Served(directory).start()
    try:
        client = platform_with_issuance(server)
        for n, purpose in enumerate(("voluntary", "carbon_neutrality")):
            client.retire(actor("wuhan").signer, f"ret-{n}", "wuhan-platform", 600_000 * (n + 1), purpose, f"公众 {n}",
                          prove=False)
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("width_px", WIDTHS_PX)
def test_every_page_is_shot_at_desktop_and_phone_width(served, tmp_path, width_px):
    assert CHROMIUM is not None
    for name, path in PAGES.items():
        shot = tmp_path / f"{name}-{width_px}.png"
        subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                        f"--window-size={width_px},1400", f"--screenshot={shot}", served.url + path],
                       check=True, capture_output=True, timeout=120)
        assert png_size(shot)[0] == width_px, name
