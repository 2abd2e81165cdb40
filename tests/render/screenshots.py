"""Screenshots of an artifacts tree's index and one op page, taken with the browser the tests use.

    .venv/bin/python tests/render/screenshots.py ARTIFACTS_DIR OP OUT_DIR

writes OUT_DIR/index.png and OUT_DIR/op-page.png (the README shows the ones in docs/img/, made from
`doit run fused_op=router`).
"""

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import launch  # noqa: E402


def main(root: Path, op: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    pages = {"index.png": root / "index.html", "op-page.png": root / op / "summary.html"}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 2200, "height": 800})
        for name, html in pages.items():
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.screenshot(path=str(out / name), full_page=True)
            _shrink(out / name)
        browser.close()


def _shrink(path: Path) -> None:
    """256 colours are plenty for a page of text and flat charts; the PNG gets several times smaller."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
