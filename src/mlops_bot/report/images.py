"""Images in the PR comment (pure): which report files are images we publish, where they go on the
assets branch, their immutable URLs, which old folders to prune, and the comment with the images
embedded.

GitHub has no API to upload an image for a comment; an image renders when the viewer's browser can
fetch its URL. A file committed to a branch of the same repository, linked by commit SHA
(`{server}/{owner}/{repo}/blob/{sha}/{path}?raw=true`), is fetched with the viewer's own session, so
it renders for everyone who can read the repository, private ones included (docs/report-images.md).
The comment job commits the images (forge/assets_branch.py) and calls `embed_images` with the URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Literal
from urllib.parse import quote

ImagesMode = Literal["branch", "artifact", "none"]
ASSETS_BRANCH = "mlops-bot/assets"
IMAGES_START = "<!-- mlops-bot:images -->"
IMAGES_END = "<!-- /mlops-bot:images -->"
MAX_IMAGE_BYTES = 1 << 20
MAX_IMAGES = 20
KEEP_COMMITS_PER_PR = 3
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\.(png|svg)$")
_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_PNG = b"\x89PNG\r\n\x1a\n"


def image_name_ok(name: str) -> bool:
    """A plot file we publish: a plain `*.png`/`*.svg` name (no folders, no leading dot)."""
    return bool(_NAME.match(name)) and ".." not in name


def image_content_ok(name: str, data: bytes) -> bool:
    """PNG by its signature; SVG as XML text with an <svg> root and no script. The report folder is
    an artifact of a run that executed PR code, so nothing else is published from it."""
    if not data or len(data) > MAX_IMAGE_BYTES:
        return False
    if name.endswith(".png"):
        return data.startswith(_PNG)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    lowered = text.lower()
    return "<svg" in lowered and "<script" not in lowered and "javascript:" not in lowered


def asset_folder(pr: int, head_sha: str) -> str:
    """`pr-12/0123abcd...`: one folder per PR and head commit."""
    if pr <= 0 or not _SHA.match(head_sha):
        raise ValueError(f"not a PR number and commit: {pr!r}, {head_sha!r}")
    return f"pr-{pr}/{head_sha}"


def folders_to_prune(
    existing: Sequence[str],
    pr: int,
    keep: int = KEEP_COMMITS_PER_PR,
    open_prs: Sequence[int] | None = None,
    current: str | None = None,
) -> list[str]:
    """Old folders to drop from the branch's tree before `current` is added: this PR's folders
    beyond the `keep` newest (counting `current`; `existing` is in commit order, oldest first) and,
    when the open PRs are known, every folder of a PR that is no longer open. Old commits keep
    their files, so the URLs in older comments still resolve."""
    prune: list[str] = []
    mine = [f for f in existing if f.startswith(f"pr-{pr}/") and f != current]
    prune += mine[: max(0, len(mine) - (keep - 1))]
    if open_prs is not None:
        alive = {f"pr-{n}" for n in (*open_prs, pr)}
        prune += [f for f in existing if f.split("/", 1)[0] not in alive]
    return sorted(set(prune), key=list(existing).index)


def blob_url(server: str, repository: str, commit: str, path: str) -> str:
    """The immutable URL of a committed file that renders as an image in a comment."""
    if not _SHA.match(commit):
        raise ValueError(f"not a commit id: {commit!r}")
    return f"{server.rstrip('/')}/{repository}/blob/{commit}/{quote(path)}?raw=true"


def _alt(path: str) -> str:
    stem = PurePosixPath(path).stem
    return re.sub(r"[^A-Za-z0-9 _-]", " ", stem.replace("_", " ")).strip() or "plot"


def images_block(urls: Mapping[str, str], note: str = "") -> str:
    """The markdown that replaces the plot list: every image, in a fold that starts open."""
    lines = [IMAGES_START, "<details open><summary>Plots</summary>", ""]
    for path, url in urls.items():
        lines.append(f"![{_alt(path)}]({url})")
    if note:
        lines += ["", note]
    lines += ["", "</details>", IMAGES_END]
    return "\n".join(lines)


def plot_list_block(names: Sequence[str]) -> str:
    """What `validate` writes: the plot files by (already escaped) name, between markers the
    comment job replaces with the images."""
    if not names:
        return ""
    return f"{IMAGES_START}\nPlots beside this report: {', '.join(names)}\n{IMAGES_END}"


def image_reserve(count: int) -> int:
    """Characters the images block may need beyond the plot list (kept free under the comment limit)."""
    return 200 + 350 * min(count, MAX_IMAGES)


def embed_images(markdown: str, urls: Mapping[str, str], note: str = "") -> str:
    """The comment with the marked plot list replaced by the images (appended when unmarked)."""
    block = images_block(urls, note) if urls else ""
    start, end = markdown.find(IMAGES_START), markdown.find(IMAGES_END)
    if start != -1 and end > start:
        return markdown[:start] + block + markdown[end + len(IMAGES_END) :]
    return markdown.rstrip("\n") + ("\n\n" + block + "\n" if block else "\n")
