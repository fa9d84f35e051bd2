"""Render markdown the way github.com does: cmark-gfm (GitHub's own C library, via cmarkgfm) with
the table, autolink, strikethrough and tasklist extensions. Raw HTML is passed through (UNSAFE), so
tests see what would reach GitHub's sanitiser: a renderer's escaping must keep user text out of it."""

from __future__ import annotations

import re

import cmarkgfm
from cmarkgfm.cmark import Options


def render(markdown: str) -> str:
    return cmarkgfm.github_flavored_markdown_to_html(markdown, options=Options.CMARK_OPT_UNSAFE)


def image_urls(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]*)"', html)


def table_rows(html: str) -> list[list[str]]:
    """The cells of every body row of every table (inner HTML)."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, flags=re.S)
    return [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, flags=re.S) for row in rows]
