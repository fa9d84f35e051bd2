"""SHA256SUMS at every load: the one checksum module, a model folder checked by the server's loader,
and the deploy controller's cache re-verified against the register tag's digests."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlops_bot.checksums import (
    SUMS_NAME,
    parse_sums,
    render_sums,
    sha256_bytes,
    sha256_file,
    verify_folder,
    write_sums,
)
from mlops_bot.cli import main
from mlops_bot.deploy.loading import load_version
from mlops_bot.deploy.sources import RegistrySource
from mlops_bot.errors import IntegrityError
from mlops_bot.forge.local import LocalForge
from mlops_bot.model_file import load_model, load_verified, save_model
from mlops_bot.registry.registry import Registry
from registry.registry_gitrepos import commit, run_git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    origin, work = tmp_path / "origin.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    run_git(work, "config", "user.name", "dev")
    run_git(work, "config", "user.email", "dev@example.com")
    run_git(work, "remote", "add", "origin", str(origin))
    commit(work, "first")
    return work


def _model(c: float = 1.0) -> LogisticRegression:
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    return LogisticRegression(C=c).fit(x, (x["a"] > 0).astype(int))


def _edit_coefficients(path: Path) -> None:
    """What an attacker with disk access does: a real, loadable model with other weights."""
    model = load_model(path)
    model.coef_ = -model.coef_
    save_model(model, path)


def test_helpers_agree_with_sha256sum(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"x" * (3 << 20))
    (tmp_path / "b.txt").write_text("hello\n")
    digests = write_sums(tmp_path)
    assert digests == {"a.bin": sha256_file(tmp_path / "a.bin"), "b.txt": sha256_bytes(b"hello\n")}
    assert sha256_file(tmp_path / "a.bin") == hashlib.sha256(b"x" * (3 << 20)).hexdigest()
    # GNU sha256sum reads our file and agrees with every line.
    checked = subprocess.run(["sha256sum", "--check", "--strict", SUMS_NAME], cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    ours = (tmp_path / SUMS_NAME).read_text()
    assert parse_sums(ours) == digests and render_sums(digests) == ours
    assert parse_sums(f"{'A' * 64} *x.bin\n") == {"x.bin": "a" * 64}  # binary-mode marker
    with pytest.raises(IntegrityError, match="line 2 is not"):
        parse_sums(f"{'a' * 64}  x\nnonsense\n")


def test_verify_folder_names_the_file_that_changed(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"model")
    (tmp_path / "signature.json").write_text("{}")
    digests = write_sums(tmp_path)
    assert verify_folder(tmp_path, require=["model.skops"]) == digests
    assert verify_folder(tmp_path, expected=digests) == digests
    (tmp_path / "signature.json").write_text('{"inputs": []}')
    with pytest.raises(IntegrityError, match=r"signature\.json has sha256 .* expected"):
        verify_folder(tmp_path)
    write_sums(tmp_path)  # the attacker rewrites SHA256SUMS too: the tag's digests still catch it
    with pytest.raises(IntegrityError, match=r"disagrees with the registry tag for signature\.json"):
        verify_folder(tmp_path, expected=digests)
    (tmp_path / "model.skops").unlink()
    with pytest.raises(IntegrityError, match=r"lacks model\.skops"):
        verify_folder(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert verify_folder(empty) is None
    with pytest.raises(IntegrityError, match="has no SHA256SUMS, but the registry recorded"):
        verify_folder(empty, expected=digests)


def test_served_folder_is_checked_at_every_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "v1.0.0"
    save_model(_model(), folder / "model.skops")
    write_sums(folder)
    assert load_version("m", "v1.0.0", folder).model.coef_.shape == (1, 2)
    assert load_verified(folder / "model.skops") is not None
    _edit_coefficients(folder / "model.skops")
    with pytest.raises(IntegrityError, match=r"model\.skops has sha256 .*SHA256SUMS"):
        load_version("m", "v1.0.0", folder)
    with pytest.raises(IntegrityError, match=r"model\.skops has sha256"):
        load_version("m", "v1.0.0", folder / "model.skops")  # a file path: its folder's list still applies
    assert main(["serve", "m", "--model", str(folder), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "model.skops has sha256" in err and len(err.strip().splitlines()) == 1
    # A model file named on its own: an unrelated SHA256SUMS beside it is not its business.
    alone = tmp_path / "downloads"
    save_model(_model(), alone / "model.skops")
    (alone / SUMS_NAME).write_text(render_sums({"ubuntu.iso": "0" * 64}))
    assert load_version("m", "v1.0.0", alone / "model.skops").model is not None
    with pytest.raises(IntegrityError, match=r"does not list model\.skops"):
        load_version("m", "v1.0.0", alone)  # a folder must vouch for its model
    # A SHA256SUMS that does not list the model does not vouch for it.
    (folder / SUMS_NAME).write_text(render_sums({"other": "0" * 64}))
    with pytest.raises(IntegrityError, match=r"does not list model\.skops"):
        load_version("m", "v1.0.0", folder)


def test_the_digest_is_of_the_bytes_that_are_loaded(tmp_path: Path) -> None:
    path = save_model(_model(), tmp_path / "model.skops")
    good = sha256_file(path)
    assert load_model(path, expected_sha256=good) is not None
    with pytest.raises(IntegrityError, match="expected 000000000000"):
        load_model(path, expected_sha256="0" * 64)


def test_deploy_cache_is_reverified_against_the_register_tag(repo: Path, tmp_path: Path) -> None:
    """The controller's RegistrySource downloads once, then re-checks the cached folder against the
    digests the register tag recorded on every fetch: an edit in the cache (even with SHA256SUMS
    rewritten to match) is an error naming the file, not a model served."""
    model = save_model(_model(), tmp_path / "src" / "model.skops")
    registry = Registry(repo, forge=LocalForge(tmp_path / "forge"))
    registry.register("m", artifacts={"model.skops": model}, push=True)
    source = RegistrySource(registry)
    cache = tmp_path / "cache"
    folder = source.fetch("m", "v0.0.1", cache)
    assert source.fetch("m", "v0.0.1", cache) == folder
    load_version("m", "v0.0.1", folder)
    _edit_coefficients(folder / "model.skops")
    write_sums(folder)  # SHA256SUMS made to agree with the edited file
    load_version("m", "v0.0.1", folder)  # the folder alone cannot tell ...
    with pytest.raises(IntegrityError, match=r"disagrees with the registry tag for model\.skops"):
        source.fetch("m", "v0.0.1", cache)  # ... the register tag can
