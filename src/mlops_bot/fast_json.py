"""The one home of "orjson when installed, else the standard parser" for JSON documents we receive
(webhook bodies, inference requests).

orjson parses in about a third of `json`'s CPU, but it does not read every document as `json` does:
it refuses NaN/Infinity literals, numbers past the float range (1e999), lone surrogates, nesting past
1024 levels, a UTF-8 BOM and UTF-16/32 bytes, and (3.10 and later) reads integers past 64 bits as
floats, losing digits. Refusals go through `json`; a document with a whole number of 19 or more digits
goes to `json` before orjson sees it. So `loads` accepts exactly what `json.loads` accepts and returns
the same values of the same types (dict, list, str, int, float, bool, None) with or without orjson:
orjson is an optimisation of the `serve` and `bot` extras, never a dependency. Errors are
`json.loads`'s (`ValueError`, including `UnicodeDecodeError`, or `RecursionError`): each caller turns
them into its own answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson
except ModuleNotFoundError:  # the core install: the standard parser alone
    orjson = None  # type: ignore[assignment]

# Each byte as its class: a digit is "0", "." and "e"/"E" stay (a fraction, an exponent), the rest " ".
_CLASSES = bytes(
    0x30 if 0x30 <= b <= 0x39 else b if b in b".e" else 0x65 if b == 0x45 else 0x20 for b in range(256)
)
# The shortest whole numbers orjson may not hold exactly: -9223372036854775809 has 19 digits.
_LONG = b"0" * 19
_DIGITS = re.compile(rb"0+")


def loads(document: bytes | str) -> Any:
    """`json.loads(document)`, through orjson first when it is installed and the document is bytes."""
    if orjson is not None and isinstance(document, bytes | bytearray) and not _long_integer(document):
        try:
            return orjson.loads(document)
        except orjson.JSONDecodeError:
            pass
    return json.loads(document)


def _long_integer(document: bytes | bytearray) -> bool:
    """Whether the text holds a run of 19 or more digits that is neither a fraction's digits nor a
    mantissa (a number literal orjson may read as a float; a string's digits count too: `json` reads
    those documents, a little slower). Two C passes: translate to classes, find the run."""
    classes = document.translate(_CLASSES)
    at = classes.find(_LONG)
    while at != -1:
        run = _DIGITS.match(classes, at)
        end = run.end() if run else at
        fraction = at > 0 and classes[at - 1] == 0x2E
        mantissa = end < len(classes) and classes[end] in (0x2E, 0x65)
        if not fraction and not mantissa:
            return True
        at = classes.find(_LONG, end)
    return False
