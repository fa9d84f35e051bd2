"""The release's pinning script: our actions referenced by full commit SHA with the version in a
comment, in the templates and the docs; zizmor at its default policy finds nothing above
informational in the pinned templates (the tag-pinned originals do get high findings)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_bot.adopt.pinning import main, pin_actions, unpinned

ROOT = Path(__file__).resolve().parents[2]
SHA = "0123456789abcdef0123456789abcdef01234567"
SEVERITY = ["Unknown", "Informational", "Low", "Medium", "High"]


def test_every_reference_form_is_pinned() -> None:
    text = (
        "      - uses: mlops-bot/mlops-bot/actions/setup@v0\n"
        "        uses: mlops-bot/mlops-bot@v0   # pin to a SHA\n"
        "- uses: mlops-bot/mlops-bot/actions/validate@<40-hex SHA of v0.1.0> # v0.1.0\n"
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2\n"
        "      - uses: mlops-bot/mlops-bot-fork/actions/setup@v0\n"
    )
    pinned = pin_actions(text, SHA, "v1.2.3")
    assert pinned.splitlines() == [
        f"      - uses: mlops-bot/mlops-bot/actions/setup@{SHA} # v1.2.3",
        f"        uses: mlops-bot/mlops-bot@{SHA} # v1.2.3",
        f"- uses: mlops-bot/mlops-bot/actions/validate@{SHA} # v1.2.3",
        "      - uses: actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2",
        "      - uses: mlops-bot/mlops-bot-fork/actions/setup@v0",
    ]
    assert unpinned(pinned) == [] and len(unpinned(text)) == 3
    assert pin_actions(pinned, "f" * 40, "v1.2.4").count("f" * 40) == 3  # the next release re-pins
    with pytest.raises(ValueError, match="full commit SHA"):
        pin_actions(text, "abc123", "v1.2.3")
    with pytest.raises(ValueError, match=r"vX\.Y\.Z"):
        pin_actions(text, SHA, "1.2.3")


def _zizmor_severities(paths: list[Path]) -> list[tuple[str, str]]:
    done = subprocess.run([str(Path(sys.executable).with_name("zizmor")), "--offline", "--format", "json",
                           *map(str, paths)], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0 or done.returncode >= 10, done.stderr[-2000:]
    return [(f["ident"], f["determinations"]["severity"]) for f in json.loads(done.stdout or "[]")]


@pytest.mark.slow
def test_released_templates_pass_zizmor_at_its_default_policy(tmp_path: Path) -> None:
    copies = []
    for template in sorted((ROOT / "workflows-templates").glob("mlops-*.yml")):
        shutil.copy(template, tmp_path / template.name)
        copies.append(tmp_path / template.name)
    before = _zizmor_severities(copies)
    assert ("unpinned-uses", "High") in before  # the unreleased templates refer to @v0

    assert main(["--sha", SHA, "--version", "v0.1.0", *map(str, copies)]) == 0
    after = _zizmor_severities(copies)
    above = [(ident, severity) for ident, severity in after
             if SEVERITY.index(severity) > SEVERITY.index("Informational")]
    assert above == [], above
    assert all(f"@{SHA} # v0.1.0" in path.read_text() for path in copies)
