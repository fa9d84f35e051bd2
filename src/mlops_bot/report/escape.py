"""Everything a user typed is data: the one home for putting untrusted text into markdown.

Column names, group values, class labels, model names, config values, comment text: anything that
did not come from this code base goes through one of these before it reaches a PR comment, a check
run, a model card, a monitor issue or a bot reply. Each function returns text that renders (GitHub
flavoured markdown, raw HTML allowed) as exactly the characters given, and can open no tag, heading,
table cell, link, details block or code span, nor mention anybody.

- `text(value)`: inline text in a paragraph, a list item or a heading; also safe inside raw HTML
  (a `<summary>`), because it uses character references, which both markdown and HTML decode.
- `cell(value)`: a markdown table cell (also escapes `|`, which splits cells before any inline parse).
- `code(value, table=...)`: a code span whose content is shown verbatim, backticks inside included.
- `prose(value)`: multi-line free text a maintainer wrote (markdown kept, HTML and mentions inert).
- `truncate(value, limit)`: bound a quoted value, saying how long the original was.
- `quote(value)`: how a bot reply repeats user input: truncated, then a code span.
- `message(value)`: our own one-line error message that may quote outside text (bot replies).
- `comment_text(value)`: a value inside a hidden `<!-- -->` marker that cannot end it.
- `plot_text(value)`: text for a matplotlib title, label or tick (no mathtext).
- `link_target(value)`: a path for `![alt](<...>)` that cannot end the destination early.
- `neutralise_mentions(value)`: `@user`, `@org/team` and `#123` made inert (a zero-width space after
  the sigil: GitHub links mentions in rendered text nodes, so entities would not stop it).

Pure functions; no markdown library at run time (the tests render with GitHub's own cmark-gfm).
"""

from __future__ import annotations

import re

ZERO_WIDTH_SPACE = "\u200b"
QUOTE_LIMIT = 200  # how much of a user's own input a bot reply quotes back

# Markdown and HTML punctuation that can start or end a construct anywhere in a line, as numeric
# character references: decoded as the same character by both a markdown inline parser and an HTML
# parser, never parsed. `_` only where it could open or close emphasis (not inside a word, so
# `petal_length` stays readable); `#`, `-`, `+`, `=` only first in the value (a heading, list or
# setext underline needs them at the start of a line); `:` and `.` only where a bare URL would become
# a link.
_ALWAYS = "&<>`*[]|~\\$"
_SPECIAL_RE = re.compile(
    "[" + re.escape(_ALWAYS) + "]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])|(?<=^)[#+=-]|(?<=^ )[#+=-]"
    "|(?<=^  )[#+=-]|(?<=^   )[#+=-]"
    "|:(?=//)|(?<=[wW]{3})\\."  # `https://` and `www.` would be autolinked (GFM extension)
)
# Line breaks and other C0/C1 controls end table rows and start blocks, bidi overrides reorder what a
# reviewer sees ("Trojan Source"): all become one space.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
# A mention: @ then a login (optionally /team), or an issue reference #123, or an email-ish tail.
_MENTION_RE = re.compile(r"([@#])(?=[A-Za-z0-9_])")


def _one_line(value: object) -> str:
    return _CONTROL_RE.sub(" ", str(value))


def neutralise_mentions(value: str) -> str:
    """`@octocat` -> `@\u200boctocat`: renders the same, notifies nobody, references no issue."""
    return _MENTION_RE.sub(lambda m: m.group(1) + ZERO_WIDTH_SPACE, value)


def text(value: object) -> str:
    """Inline text shown verbatim in markdown or inside raw HTML: one line, no markup, no mention."""
    return _SPECIAL_RE.sub(lambda m: f"&#{ord(m.group(0))};", neutralise_mentions(_one_line(value)))


def cell(value: object) -> str:
    """A markdown table cell shown verbatim (`|` included: the reference does not split the row)."""
    return text(value) or " "


def code(value: object, table: bool = False) -> str:
    """A code span showing `value` verbatim, backticks included.

    The fence is one backtick longer than the longest run inside, padded with spaces when the
    content starts or ends with a backtick (CommonMark strips one space each side). In a table
    (`table=True`) `|` is backslash-escaped: GFM splits cells before parsing code spans and drops
    the backslash inside them. Mentions are neutralised too (GitHub does not link them in code, but
    a span can be closed by a value we did not see coming; the zero-width space costs nothing).
    """
    content = neutralise_mentions(_one_line(value))
    if table:
        content = content.replace("|", "\\|")
    runs = [len(run) for run in re.findall(r"`+", content)]
    fence = "`" * (max(runs, default=0) + 1)
    if not content.strip(" "):
        return fence + (content or " ") + fence
    if content.startswith("`") or content.endswith("`") or (content[0] == " " and content[-1] == " "):
        content = f" {content} "
    return f"{fence}{content}{fence}"


def truncate(value: object, limit: int = QUOTE_LIMIT) -> str:
    """At most `limit` characters of `value`, plus a note of the full length when it was longer."""
    raw = str(value)
    if len(raw) <= limit:
        return raw
    return f"{raw[:limit]}… ({len(raw):,} characters)"


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """What a bot reply says when it repeats user input: truncated, then a code span."""
    raw = str(value)
    if len(raw) <= limit:
        return code(raw)
    return f"{code(raw[:limit])}… ({len(raw):,} characters)"


def prose(value: object) -> str:
    """Free text a maintainer wrote for people (a model description): markdown kept, lines kept, but
    raw HTML inert (`<`, `>`, `&` as references) and nobody mentioned."""
    lines = [_one_line(line) for line in str(value).replace("\r\n", "\n").split("\n")]
    kept = "\n".join(lines)
    kept = kept.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralise_mentions(kept)


def link_target(value: object) -> str:
    """A link or image destination for `[x](<...>)`: one line, and no `<`, `>` or `\\` to end it."""
    return "".join(f"%{ord(ch):02X}" if ch in "<>\\ " else ch for ch in _one_line(value))


def message(value: object, limit: int = 1000) -> str:
    """One of our own error messages that may quote outside text (config, forge): kept as markdown so
    its code spans still render, but one line, bounded, raw HTML inert and nobody mentioned."""
    line = _one_line(truncate(value, limit)).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return neutralise_mentions(line)


def comment_text(value: object) -> str:
    """Text inside a hidden `<!-- ... -->` marker that cannot end it (no `-->`, `--!>`, line break)."""
    return re.sub("-(?=-)", "&#45;", _one_line(value).replace("&", "&amp;").replace(">", "&gt;"))


def plot_text(value: object) -> str:
    """Text for a matplotlib title, label or tick: `$` escaped, so a column named `$\\foo$` is
    shown as typed instead of parsed as mathtext (which raises on unknown symbols)."""
    return _one_line(value).replace("$", r"\$")
