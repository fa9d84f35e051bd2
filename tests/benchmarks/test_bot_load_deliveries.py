"""The bot benchmark's deliveries (benchmarks/bot_load_deliveries.py): each one a distinct request
to our bot (its own idempotency key) with a signature GitHub's check accepts, commands where asked,
and the wrk request file the Lua script reads back."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from bot_load_deliveries import (
    COMMAND,
    build_deliveries,
    example_payload,
    write_wrk_requests,
)
from mlops_bot.bot.events import DeliveryRejected, parse_delivery

EXAMPLE: dict[str, Any] = {
    "action": "created",
    "issue": {"number": 1, "title": "Spelling error in the README file"},
    "comment": {"id": 492700400, "node_id": "MDEyOklzc3VlQ29tbWVudDQ5MjcwMDQwMA==", "body": "You are right!",
                "user": {"login": "Codertocat", "type": "User"}},
    "repository": {"id": 186853002, "full_name": "Codertocat/Hello-World"},
    "sender": {"login": "Codertocat"},
}


def test_every_delivery_is_signed_and_its_own_request() -> None:
    forge_comments = iter(range(7000, 7100))
    items = build_deliveries(EXAMPLE, "s3cret", 40, prefix="r1", first_comment_id=100, command_every=10,
                             pull_request=5, command_comment=lambda: next(forge_comments))
    parsed = [parse_delivery(item.headers(), item.body, ["s3cret"]) for item in items]
    assert len({d.delivery for d in parsed}) == 40
    assert len({d.key for d in parsed}) == 40  # our bot stores each once, none folded as a replay
    commands = [d for d, item in zip(parsed, items, strict=True) if item.command]
    assert [d.payload["comment"]["id"] for d in commands] == [7000, 7001, 7002, 7003]
    for delivery in commands:
        assert delivery.payload["comment"]["body"] == COMMAND
        assert delivery.payload["issue"]["number"] == 5 and "pull_request" in delivery.payload["issue"]
    plain = [d for d, item in zip(parsed, items, strict=True) if not item.command]
    assert all(d.payload["comment"]["body"] == "You are right!" and "pull_request" not in d.payload["issue"]
               for d in plain)
    assert EXAMPLE["comment"]["id"] == 492700400  # the example itself is left as it was
    with pytest.raises(DeliveryRejected):
        parse_delivery(items[0].headers(), items[0].body, ["another secret"])


def test_wrk_request_file_reads_back(tmp_path: Path) -> None:
    items = build_deliveries(EXAMPLE, "s3cret", 3, prefix="b", first_comment_id=1)
    lines = write_wrk_requests(items, tmp_path / "requests.txt").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == 3 * 3 + 1
    for index, item in enumerate(items):
        delivery, signature, body = lines[3 * index: 3 * index + 3]
        assert (delivery.decode(), signature.decode(), body) == (item.delivery, item.signature, item.body)
        assert json.loads(body)["comment"]["id"] == 1 + index


def test_missing_npm_package_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="npm ci"):
        example_payload(tmp_path)


def test_delivery_ids_have_no_spaces() -> None:
    # The bot's reply marker carries the delivery id up to a space: the count of replies per
    # delivery (exactly once) would otherwise never match.
    with pytest.raises(ValueError, match="no spaces"):
        build_deliveries(EXAMPLE, "s3cret", 1, prefix="busy core1", first_comment_id=1)
