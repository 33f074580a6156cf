"""Screenshot pages of a ccvec report with headless Chromium (Debian's `chromium`), for the README.

python tools/report_screenshot.py OUT docs/report.png [--page index.html] [--width 1280]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the report folder (ccvec run --out OUT)")
    parser.add_argument("png", type=Path)
    parser.add_argument("--page", default="index.html")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--full", action="store_true", help="the whole page, not the first screen")
    args = parser.parse_args()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        page.goto((args.out / args.page).resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(args.png), full_page=args.full)
        browser.close()


if __name__ == "__main__":
    main()
