"""Webhook signatures: GitHub's documented vector, rotation, and every way a header can be wrong."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mlops_bot.bot.signature import parse_secrets, sign, verify

GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_githubs_documented_vector() -> None:
    assert sign(GITHUB_SECRET, GITHUB_BODY) == GITHUB_SIGNATURE
    assert verify(GITHUB_BODY, GITHUB_SIGNATURE, [GITHUB_SECRET])


def test_any_of_several_secrets_verifies_for_rotation() -> None:
    secrets = parse_secrets(f" old-secret , {GITHUB_SECRET},,")
    assert secrets == ["old-secret", GITHUB_SECRET]
    assert verify(GITHUB_BODY, GITHUB_SIGNATURE, secrets)
    assert verify(GITHUB_BODY, sign("old-secret", GITHUB_BODY), secrets)
    assert not verify(GITHUB_BODY, sign("retired", GITHUB_BODY), secrets)


def test_rejects_missing_wrong_and_malformed_headers() -> None:
    secrets = [GITHUB_SECRET]
    assert not verify(GITHUB_BODY, None, secrets)
    assert not verify(GITHUB_BODY, "", secrets)
    assert not verify(GITHUB_BODY, GITHUB_SIGNATURE.replace("sha256=", "sha1="), secrets)
    assert not verify(GITHUB_BODY, GITHUB_SIGNATURE[:-1] + "0", secrets)
    assert not verify(GITHUB_BODY, GITHUB_SIGNATURE.upper(), secrets)
    assert not verify(GITHUB_BODY + b" ", GITHUB_SIGNATURE, secrets)
    assert not verify(GITHUB_BODY, "sha256=ünïcode", secrets)
    assert not verify(GITHUB_BODY, GITHUB_SIGNATURE, [])


@given(body=st.binary(max_size=256), secret=st.text(min_size=1, max_size=30), flip=st.integers(0, 63))
def test_any_single_hex_digit_change_is_rejected(body: bytes, secret: str, flip: int) -> None:
    good = sign(secret, body)
    assert verify(body, good, [secret])
    digits = list(good[len("sha256="):])
    digits[flip] = "0" if digits[flip] != "0" else "1"
    assert not verify(body, "sha256=" + "".join(digits), [secret])
