"""Webhook signature checks (`X-Hub-Signature-256`), pure and constant-time.

Several secrets are accepted at once so a secret can be rotated without dropping deliveries: set the
new one next to the old one, update the GitHub App, then remove the old one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def parse_secrets(value: str | None) -> list[str]:
    """`MLOPS_BOT_WEBHOOK_SECRET` is comma-separated for rotation; blanks are dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def sign(secret: str | bytes, body: bytes) -> str:
    """The header value GitHub sends: `sha256=` + hex HMAC-SHA256 of the raw body."""
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, header: str | None, secrets: Iterable[str | bytes]) -> bool:
    """True when `header` is the signature of `body` under any of `secrets`.

    Every secret is compared (no early exit) with `hmac.compare_digest`, so timing reveals neither
    which secret matched nor how much of the signature was right. `hmac.digest` is OpenSSL's
    one-shot HMAC (no HMAC object per call)."""
    if not header or not header.startswith(PREFIX):
        return False
    given = header[len(PREFIX):].encode("ascii", "replace")
    matched = False
    for secret in secrets:
        key = secret.encode("utf-8") if isinstance(secret, str) else secret
        matched |= hmac.compare_digest(hmac.digest(key, body, "sha256").hex().encode("ascii"), given)
    return matched
