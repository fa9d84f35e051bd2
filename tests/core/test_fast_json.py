"""`fast_json.loads` is `json.loads` with orjson in front: the webhook parser (bot/events.py) and the
OIP parser (deploy/oip.py) give the same values, of the same types, and the same errors with and
without orjson installed; each keeps its own error (a 400 delivery vs a BadRequest naming the cause)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_bot import fast_json

DOCUMENTS: list[bytes] = [
    b'{"a": 1, "b": [1.5, -0.0, 1e-7, 2.5e300, true, false, null, "x"]}',
    # Integers past 64 bits (orjson refuses them) and at its limits (it reads them).
    b'{"n": 123456789012345678901234567890, "m": -123456789012345678901234567890}',
    b"[18446744073709551615, -9223372036854775808, 18446744073709551616, -9223372036854775809]",
    # Unicode: raw UTF-8, escapes, an escaped pair, an escaped lone surrogate (orjson refuses it).
    '{"名前": "café ☕ 😀", "e": "\\u00e9\\ud83d\\ude00"}'.encode(),
    b'["\\ud800", "x\\udfff"]',
    # NaN/Infinity literals and a number past the float range (orjson refuses them; json reads them).
    b'{"inputs": [NaN, Infinity, -Infinity]}',
    b'{"x": 1e999, "y": -1e999}',
    # Long digit runs that are not whole numbers (orjson reads them) and one in a string.
    b'[0.0000000000000000000012345, 12345678901234567890.5, 12345678901234567890e2, "12345678901234567890"]',
    b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
    '\ufeff{"bom": 1}'.encode(),  # json reads a UTF-8 BOM in bytes
    '{"utf16": "é"}'.encode("utf-16"),  # and UTF-16 bytes
    b"[" * 1100 + b"]" * 1100,  # deeper than orjson's 1024 levels
    # Refused by both parsers.
    b'{"a": }',
    b'{"a": \xff}',
    b"",
    b"[" * 100_000,
    b"nan",
]

# Runs both callers over the documents (hex on stdin); prints whether orjson was used and the outcomes.
SCRIPT = """
import json, sys
if sys.argv[1] == "without":
    sys.modules["orjson"] = None  # what `import orjson` sees when it is not installed
from mlops_bot import fast_json
from mlops_bot.bot.events import DeliveryRejected, _json_document
from mlops_bot.deploy.oip import BadRequest, parse_json

def outcome(parse, document):
    try:
        return ["value", repr(parse(document))]
    except (DeliveryRejected, BadRequest) as error:
        return [type(error).__name__, str(error), getattr(error, "status", None)]

documents = [bytes.fromhex(h) for h in json.load(sys.stdin)]
print(json.dumps({
    "orjson": fast_json.orjson is not None,
    "events": [outcome(_json_document, d) for d in documents],
    "oip": [outcome(parse_json, d) for d in documents],
    "oip_text": [outcome(parse_json, d.decode("utf-8")) for d in documents[:8]],
}))
"""


def _outcomes(orjson: str) -> dict[str, object]:
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT, orjson], input=json.dumps([d.hex() for d in DOCUMENTS]),
        capture_output=True, text=True, check=False, timeout=120, env=dict(os.environ),
    )
    assert run.returncode == 0, run.stderr
    result: dict[str, object] = json.loads(run.stdout)
    return result


def test_both_parsers_give_identical_results_with_and_without_orjson() -> None:
    pytest.importorskip("orjson")
    fast, plain = _outcomes("with"), _outcomes("without")
    assert (fast.pop("orjson"), plain.pop("orjson")) == (True, False)
    assert fast == plain
    # The values are json.loads's, types included (an int stays an int, NaN a float).
    expected = []
    for document in DOCUMENTS:
        try:
            expected.append(["value", repr(json.loads(document))])
        except (ValueError, RecursionError):
            expected.append(None)
    events, oip = fast["events"], fast["oip"]
    assert isinstance(events, list) and isinstance(oip, list)
    for index, want in enumerate(expected):
        if want is not None:
            assert events[index] == want == oip[index], DOCUMENTS[index][:40]
    # Each caller keeps its own error: the webhook answers 400, OIP names the cause.
    refused = {DOCUMENTS.index(b'{"a": }'), DOCUMENTS.index(b"[" * 100_000), DOCUMENTS.index(b"")}
    assert {tuple(events[i]) for i in refused} == {("DeliveryRejected", "body is not valid JSON", 400)}
    assert oip[DOCUMENTS.index(b'{"a": }')] == ["BadRequest", "the request body is not valid JSON", 400]
    too_deep = ["BadRequest", "the request body nests JSON too deeply", 400]
    assert oip[DOCUMENTS.index(b"[" * 100_000)] == too_deep
    assert fast["oip_text"] == [outcome for outcome in oip[:8]]  # str bodies as their UTF-8 bytes


def test_loads_reads_what_orjson_refuses_or_rounds_with_the_standard_parser() -> None:
    assert fast_json.loads(b"[NaN, 18446744073709551616]")[1] == 2**64
    # orjson 3.10+ reads these as floats (1.8446744073709552e+19): the exact integer is json's.
    assert fast_json.loads(b"[18446744073709551616]") == [18446744073709551616]
    assert fast_json.loads(b'{"n": -9223372036854775809}') == {"n": -9223372036854775809}
    assert type(fast_json.loads(b"[-9223372036854775808]")[0]) is int
    assert math.isnan(fast_json.loads(b"[NaN]")[0])
    assert fast_json.loads('{"a": -Infinity}')["a"] == -math.inf
    with pytest.raises(ValueError):
        fast_json.loads(b'{"a": \xff}')


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.text() | st.integers()
    | st.integers(min_value=2**62, max_value=2**70) | st.integers(min_value=-(2**70), max_value=-(2**62)),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, ascii_only=st.booleans())
def test_loads_is_json_loads_for_any_document(value: object, ascii_only: bool) -> None:
    """Whatever json.dumps writes (NaN and Infinity literals, huge integers, any text), `loads` reads
    as json.loads does, to the type (repr tells 1 from 1.0 and -0.0 from 0.0)."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        document = text.encode()
    except UnicodeEncodeError:  # a lone surrogate written raw: not UTF-8, so bytes only via escapes
        return
    assert repr(fast_json.loads(document)) == repr(json.loads(document))
