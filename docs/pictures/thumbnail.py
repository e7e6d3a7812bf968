#!/usr/bin/env python
"""Render a ``flushcheck picture`` HTML page as the PNG thumbnail the README shows.

Usage::

    pip install cairosvg            # not a dependency of flushcheck: only this script needs it
                                    # (or rsvg-convert: apt-get install librsvg2-bin)
    python docs/pictures/thumbnail.py docs/pictures/lost-pending-flush-2021.html

writes ``docs/pictures/lost-pending-flush-2021.png`` beside it: the page's heading, verdict,
config, command and legend lines drawn as SVG text above the page's own timeline SVG (the
page's CSS for that SVG inlined), all rendered by cairosvg, or by librsvg's ``rsvg-convert`` where cairosvg is
not installed. Re-run it whenever the page is
regenerated (README, "the second command"), so that the thumbnail's step numbers are the
page's.
"""
from __future__ import annotations

import html
import re
import sys
import textwrap

WRAP = 130  # characters per header line (14px sans-serif, bold included) over the page's width
LINE = 19  # pixels per header line
SVG_CSS = "text{font:12px monospace} .small{font-size:10.5px} .cpu{font:bold 14px sans-serif}"


def _plain(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).replace("\xa0", " ").strip()


def thumbnail_svg(page: str) -> str:
    """The SVG of the thumbnail of the HTML ``page``: header lines, legend, timeline."""
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    width = int(re.search(r'width="(\d+)"', svg).group(1))
    height = int(re.search(r'height="(\d+)"', svg).group(1))
    body = page[page.index("<body>"):page.index("<svg")]
    out, y = [], 0
    title = _plain(re.search(r"<h1>(.*?)</h1>", body, re.S).group(1))
    y += LINE
    out.append(f'<text x="0" y="{y}" style="font:bold 16px sans-serif">{html.escape(title)}</text>')
    for cls, inner in re.findall(r'<p(?: class="(\w+)")?>(.*?)</p>', body, re.S):
        if 'class="sw"' in inner:  # the legend: a swatch before each label
            x, y = 0, y + LINE
            for colour, label in re.findall(r'background:(#[0-9a-f]+)"></span>([^<&]*)', inner):
                out.append(f'<rect x="{x + 4}" y="{y - 9}" width="22" height="8" fill="{colour}"/>')
                out.append(f'<text x="{x + 30}" y="{y}" style="font:14px sans-serif">'
                           f'{html.escape(label.strip())}</text>')
                x += 30 + 8 * len(label.strip()) + 16
            continue
        style = "font:bold 14px sans-serif;fill:#b00" if cls == "bad" else "font:14px sans-serif"
        for line in textwrap.wrap(_plain(inner), WRAP):
            y += LINE
            out.append(f'<text x="0" y="{y}" style="{style}">{html.escape(line)}</text>')
    top = y + 12
    inner_svg = re.sub(r"(<svg[^>]*>)", r"\1<style>" + SVG_CSS + "</style>", svg, count=1)
    inner_svg = inner_svg.replace("<svg ", f'<svg x="0" y="{top}" ', 1)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 24}" '
            f'height="{top + height + 24}"><rect width="100%" height="100%" fill="#fff"/>'
            f'<g transform="translate(12,12)" fill="#222">{"".join(out)}{inner_svg}</g></svg>')


def main(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        page = f.read()
    png = path.rsplit(".", 1)[0] + ".png"
    svg = thumbnail_svg(page).encode()
    try:
        import cairosvg
    except ImportError:  # librsvg's command line (Debian: apt-get install librsvg2-bin)
        import shutil
        import subprocess

        if shutil.which("rsvg-convert") is None:
            sys.exit("thumbnail.py: needs cairosvg (pip install cairosvg) or rsvg-convert "
                     "(apt-get install librsvg2-bin)")
        subprocess.run(["rsvg-convert", "-o", png], input=svg, check=True)
        return png
    cairosvg.svg2png(bytestring=svg, write_to=png)
    return png


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: thumbnail.py PICTURE.html")
    print(main(sys.argv[1]))
