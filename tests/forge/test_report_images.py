"""Report images on the assets branch: pushed by commit to a real bare origin, embedded by their
commit-SHA URLs, rendered with GitHub's own cmark-gfm, and every URL resolves to the pushed bytes.
Also what is refused (non-images from the untrusted artifact), pruning, and the checkout left alone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import gfm
from mlops_bot.forge.assets_branch import branch_images_step, collect_images, publish_images
from mlops_bot.forge.local import LocalForge
from mlops_bot.forge.publish import publish_report
from mlops_bot.report.images import (
    IMAGES_END,
    IMAGES_START,
    asset_folder,
    blob_url,
    embed_images,
    folders_to_prune,
    image_content_ok,
    image_name_ok,
    plot_list_block,
)

URL = re.compile(r"^file://(?P<root>[^#?]+)/demo/repo/blob/(?P<sha>[0-9a-f]{40})/(?P<path>[^?]+)\?raw=true$")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
                               "PATH": "/usr/bin:/bin", "HOME": str(repo)})
    return done.stdout.strip()


@pytest.fixture()
def checkout(tmp_path: Path) -> Path:
    """A bare origin and a checkout of its main branch (the comment job's base repository)."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "README.md").write_text("base\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "remote", "add", "origin", str(origin))
    _git(repo, "push", "-q", "origin", "main")
    return repo


def _png(path: Path, title: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    ax.set_title(title)
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path


def _report(folder: Path, model: str = "credit-risk") -> Path:
    _png(folder / "plots" / "roc_curve.png", "roc")
    _png(folder / "plots" / "drift_00_income.png", "drift")
    (folder / "plots" / "evil.png").write_text("<script>not a png</script>")
    (folder / "plots" / "notes.txt").write_text("ignored")
    plots = ["plots/drift_00_income.png", "plots/evil.png", "plots/roc_curve.png"]
    block = plot_list_block([f"`{p}`" for p in plots])
    marker = f"<!-- mlops-bot:sticky workflow=mlops-pr model={model} -->"
    (folder / "report.md").write_text(f"{marker}\n## ✅ `{model}`\n\n{block}\n", encoding="utf-8")
    return folder


def _head(forge: LocalForge, sha: str) -> int:
    return forge.create_pull_request("PR", "feature", "main", head_sha=sha).number


def _resolve(origin: Path, url: str) -> bytes:
    match = URL.match(url)
    assert match, url
    return subprocess.run(["git", "-C", str(origin), "cat-file", "blob", f"{match['sha']}:{match['path']}"],
                          capture_output=True, check=True).stdout


def test_pure_rules() -> None:
    sha = "a" * 40
    assert asset_folder(7, sha) == f"pr-7/{sha}"
    with pytest.raises(ValueError):
        asset_folder(7, "HEAD")
    assert blob_url("https://github.com/", "o/r", sha, "pr-7/x y.png") == (
        f"https://github.com/o/r/blob/{sha}/pr-7/x%20y.png?raw=true")
    assert image_name_ok("roc_curve.png") and image_name_ok("a.svg")
    assert not any(image_name_ok(n) for n in ("../x.png", ".x.png", "x.png.exe", "x.gif", "a/b.png", ""))
    assert image_content_ok("x.png", b"\x89PNG\r\n\x1a\nrest")
    assert not image_content_ok("x.png", b"GIF89a") and not image_content_ok("x.png", b"")
    assert image_content_ok("x.svg", b"<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    assert not image_content_ok("x.svg", b"<svg><script>alert(1)</script></svg>")
    existing = ["pr-1/" + "1" * 40, "pr-2/" + "2" * 40, "pr-1/" + "3" * 40, "pr-1/" + "4" * 40]
    assert folders_to_prune(existing, 1, keep=2) == ["pr-1/" + "1" * 40, "pr-1/" + "3" * 40]
    assert folders_to_prune(existing, 1, keep=4, open_prs=[1]) == ["pr-2/" + "2" * 40]
    assert folders_to_prune(existing, 1, keep=2, current="pr-1/" + "4" * 40) == ["pr-1/" + "1" * 40]
    text = f"head\n{plot_list_block(['`a`'])}\ntail\n"
    embedded = embed_images(text, {"plots/roc_curve.png": "https://x/y.png"})
    assert IMAGES_START in embedded and "![roc curve](https://x/y.png)" in embedded and "`a`" not in embedded
    assert embedded.endswith("tail\n") and embedded.count(IMAGES_END) == 1
    assert embed_images(text, {}) == "head\n\ntail\n"  # images: none
    assert embed_images("no markers\n", {"p.png": "u"}).startswith("no markers\n\n" + IMAGES_START)


def test_comment_images_resolve_to_the_pushed_files(checkout: Path, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    forge = LocalForge(tmp_path / "forge", repo="demo/repo")
    head_sha = "c" * 40
    pr = _head(forge, head_sha)
    report = _report(tmp_path / "report")
    before = (_git(checkout, "rev-parse", "HEAD"), _git(checkout, "status", "--porcelain"))
    step = branch_images_step(forge, checkout, report, pr, server=f"file://{tmp_path / 'forge'}",
                              repository="demo/repo")
    published = publish_report(forge, report, pr, head_sha=head_sha, images=step)
    html = gfm.render(published.comment.body)
    urls = gfm.image_urls(html)
    assert len(urls) == 2 and len(published.comment.body) < 65_536
    for url in urls:
        name = URL.match(url)["path"].rsplit("/", 1)[-1]  # type: ignore[index]
        assert _resolve(origin, url) == (report / "plots" / name).read_bytes()
        assert f"/pr-{pr}/{head_sha}/" in url
    tip = _git(checkout, "ls-remote", "origin", "refs/heads/mlops-bot/assets").split()[0]
    assert all(f"/blob/{tip}/" in u for u in urls)
    # the refused file is named (escaped), never pushed; the checkout was not touched
    assert "evil.png" in html and "<script>" not in html
    assert "evil.png" not in _git(origin, "ls-tree", "-r", "--name-only", tip)
    assert (_git(checkout, "rev-parse", "HEAD"), _git(checkout, "status", "--porcelain")) == before
    assert "Plots beside this report" not in published.comment.body


def test_new_heads_add_folders_old_ones_are_pruned_but_old_urls_still_resolve(checkout: Path,
                                                                             tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    report = _report(tmp_path / "report")
    commits = []
    for k in range(4):
        published = publish_images(checkout, report, 5, f"{k + 1}" * 40, keep=3, open_prs=[5, 9])
        assert published is not None
        commits.append(published)
    other = publish_images(checkout, report, 9, "9" * 40, open_prs=[5, 9])
    assert other is not None
    tree = _git(origin, "ls-tree", "-d", "-r", "--name-only", other.commit).split()
    assert sorted(f for f in tree if "/" in f) == sorted(
        ["pr-5/" + "2" * 40, "pr-5/" + "3" * 40, "pr-5/" + "4" * 40, "pr-9/" + "9" * 40])
    first = blob_url("file:///f", "demo/repo", commits[0].commit, commits[0].paths["plots/roc_curve.png"])
    assert _resolve(origin, first) == (report / "plots" / "roc_curve.png").read_bytes()  # pruned, still there
    # PR 5 closed: its folders leave the tree on the next push
    closed = publish_images(checkout, report, 9, "8" * 40, open_prs=[9])
    assert closed is not None
    tree = _git(origin, "ls-tree", "-d", "-r", "--name-only", closed.commit).split()
    assert not any(f.startswith("pr-5") for f in tree)
    assert _git(origin, "rev-list", "--count", closed.commit) == "6"  # one commit per publish, linear


def test_no_images_no_push(checkout: Path, tmp_path: Path) -> None:
    (tmp_path / "empty" / "plots").mkdir(parents=True)
    (tmp_path / "empty" / "plots" / "fake.png").write_bytes(b"nope")
    assert collect_images(tmp_path / "empty") == ({}, ["plots/fake.png"])
    assert publish_images(checkout, tmp_path / "empty", 1, "a" * 40) is None
    assert _git(checkout, "ls-remote", "origin", "refs/heads/mlops-bot/assets") == ""
