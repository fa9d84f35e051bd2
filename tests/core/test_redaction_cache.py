"""`redact()` reuses what it derived from the environment while the environment is unchanged (the
bot's worker redacts every job's record), and still masks what changes: a variable set, changed or
removed later, a private-key file rewritten in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_bot import redaction
from mlops_bot.redaction import redact


def test_redact_follows_the_environment_and_key_file_as_they_change(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S4_TEST_API_KEY", "first-secret-value")
    assert redact("x first-secret-value y") == "x *** y"
    cached = redaction._process_environ
    assert redact("again first-secret-value") == "again ***"
    assert redaction._process_environ is cached  # unchanged environment: nothing recomputed

    monkeypatch.setenv("S4_TEST_API_KEY", "second-secret-value")
    assert redact("first-secret-value second-secret-value") == "first-secret-value ***"
    monkeypatch.setenv("LATER_TOKEN", "a-token-set-later")
    assert redact("a-token-set-later") == "***"
    monkeypatch.delenv("LATER_TOKEN")
    assert redact("a-token-set-later") == "a-token-set-later"

    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN KEY-----\n" + "A" * 40 + "\n-----END KEY-----\n")
    monkeypatch.setenv("MLOPS_BOT_APP_PRIVATE_KEY_FILE", str(key))
    assert redact("line " + "A" * 40) == "line ***"
    key.write_text("-----BEGIN KEY-----\n" + "B" * 48 + "\n-----END KEY-----\n")  # rotated in place
    os.utime(key, ns=(1, 2))  # a new mtime even on a coarse clock
    assert redact("line " + "B" * 48) == "line ***"
