"""Screenshots of an artifacts tree's index and one op page, taken with the browser the tests use.

    .venv/bin/python tests/render/screenshots.py ARTIFACTS_DIR OP OUT_DIR [--no-emoji]

writes OUT_DIR/index.png and OUT_DIR/op-page.png (the README shows the ones in docs/img/, made from
`doit run fused_op=router`); with --no-emoji, OUT_DIR/index-no-emoji.png and op-page-no-emoji.png at
1280 px, in a browser whose fontconfig rejects the colour-emoji font (what a machine without one shows).
"""

import os
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from browser import CHROMIUM, CHROMIUM_ARGS, launch  # noqa: E402


def no_emoji_fonts(folder: Path) -> dict:
    """The environment for a browser that cannot draw colour emoji: a fontconfig file that includes the
    system's and rejects Noto Color Emoji (and any other colour-emoji font)."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "fonts.conf"
    config.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n'
        '  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n'
        f"  <cachedir>{folder / 'cache'}</cachedir>\n"
        "  <selectfont><rejectfont>\n"
        "    <glob>*Emoji*</glob>\n"
        '    <pattern><patelt name="color"><bool>true</bool></patelt></pattern>\n'
        "  </rejectfont></selectfont>\n</fontconfig>\n"
    )
    return {**os.environ, "FONTCONFIG_FILE": str(config)}


def main(root: Path, op: str, out: Path, no_emoji: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    suffix, width = ("-no-emoji", 1280) if no_emoji else ("", 2200)
    pages = {f"index{suffix}.png": root / "index.html", f"op-page{suffix}.png": root / op / "summary.html"}
    with sync_playwright() as playwright:
        if no_emoji:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=no_emoji_fonts(out / ".fonts")
            )
        else:
            browser = launch(playwright)
        page = browser.new_page(viewport={"width": width, "height": 800})
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
    arguments = [a for a in sys.argv[1:] if a != "--no-emoji"]
    if len(arguments) != 3:
        sys.exit(__doc__)
    main(Path(arguments[0]), arguments[1], Path(arguments[2]), no_emoji="--no-emoji" in sys.argv)
