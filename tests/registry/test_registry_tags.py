"""The tag grammar: round-trips (hypothesis) and agreement with GTO's own parser."""

from __future__ import annotations

import pytest
import semver
from gto.constants import Action as GtoAction
from gto.tag import parse_name as gto_parse_name
from hypothesis import given
from hypothesis import strategies as st

from mlops_bot.errors import RegistryError
from mlops_bot.registry.tags import (
    Action,
    SemVer,
    TagName,
    artifact_trailers,
    checksums_from_trailers,
    gto_message,
    next_counter,
    parse_message,
    parse_tag_name,
    render_message,
)

_inner = st.text(alphabet="abcXYZ019-_/", max_size=6)
_edge = st.sampled_from(list("aZ09"))
names = st.builds(lambda a, b, c: a + b + c, _edge, _inner, _edge)
dirs = st.sampled_from(["dir", "a/b", "x.y"])
full_names = st.one_of(names, st.builds(lambda d, n: f"{d}:{n}", dirs, names))
numbers = st.integers(min_value=0, max_value=10_000)
prerelease = st.one_of(st.none(), st.sampled_from(["rc.1", "alpha", "0.3.7", "x-y.2", "beta.11"]))
versions = st.builds(lambda a, b, c, p: f"v{a}.{b}.{c}" + (f"-{p}" if p else ""), numbers, numbers, numbers,
                     prerelease)
counters = st.one_of(st.none(), st.integers(min_value=1, max_value=99_999))


@st.composite
def tag_names(draw: st.DrawFn) -> TagName:
    action = draw(st.sampled_from(list(Action)))
    name = draw(full_names)
    if action in (Action.REGISTER, Action.DEREGISTER):
        return TagName(action, name, version=draw(versions), counter=draw(counters))
    if action in (Action.ASSIGN, Action.UNASSIGN):
        return TagName(action, name, stage=draw(names), counter=draw(st.integers(1, 99_999)))
    return TagName(action, name, counter=draw(counters))


_GTO_ACTIONS = {Action.REGISTER: GtoAction.REGISTER, Action.DEREGISTER: GtoAction.DEREGISTER,
                Action.ASSIGN: GtoAction.ASSIGN, Action.UNASSIGN: GtoAction.UNASSIGN,
                Action.DEPRECATE: GtoAction.DEPRECATE}


@given(tag_names())
def test_render_parse_round_trip_and_gto_agrees(tag: TagName) -> None:
    text = tag.render()
    assert parse_tag_name(text) == tag
    gto = gto_parse_name(text)
    assert gto["name"] == tag.name
    assert gto["action"] is _GTO_ACTIONS[tag.action]
    assert gto.get("version") == tag.version
    assert gto.get("stage") == tag.stage
    assert gto.get("counter") == tag.counter


@pytest.mark.parametrize("text", ["v1.0.0", "model", "m@1.0.0", "m#", "m@v1.0", "-m@v1.0.0", "m#dev#x",
                                  "m@created", "m@deprecated!"])
def test_non_registry_tags_are_ignored(text: str) -> None:
    assert parse_tag_name(text) is None


def test_monorepo_names_use_equals_in_tags() -> None:
    tag = TagName(Action.ASSIGN, "models/a:churn", stage="prod", counter=3)
    assert tag.render() == "models/a=churn#prod#3"
    assert parse_tag_name("models/a=churn#prod!#4") == TagName(Action.UNASSIGN, "models/a:churn",
                                                                stage="prod", counter=4)


def test_counter_is_per_artifact_across_all_tag_kinds() -> None:
    tags = ["m@v0.0.1", "m#dev#1", "m#prod#4", "m#dev!#2", "other#dev#9", "m@deprecated#5", "v1.0.0"]
    assert next_counter(tags, "m") == 6
    assert next_counter(tags, "other") == 10
    assert next_counter(tags, "new") == 1


@given(st.lists(versions, min_size=2, max_size=8))
def test_semver_order_matches_python_semver(texts: list[str]) -> None:
    ours = sorted(texts, key=SemVer.parse)
    theirs = sorted(texts, key=lambda t: semver.VersionInfo.parse(t[1:]))
    assert [SemVer.parse(t) for t in ours] == [SemVer.parse(t) for t in theirs]


@given(versions, st.sampled_from(["major", "minor", "patch"]))
def test_bump_matches_python_semver(text: str, part: str) -> None:
    info = semver.VersionInfo.parse(text[1:])
    expected = {"major": info.bump_major, "minor": info.bump_minor, "patch": info.bump_patch}[part]()
    assert str(SemVer.parse(text).bump(part)) == f"v{expected}"


def test_invalid_version_is_a_clear_error() -> None:
    with pytest.raises(RegistryError, match="expected 'v' \\+ semver"):
        SemVer.parse("1.0.0")


trailer_values = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=30).map(
    str.strip)
trailer_keys = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9-]{0,12}\Z")


@given(st.sampled_from(list(Action)), st.lists(st.tuples(trailer_keys, trailer_values), max_size=5))
def test_message_round_trip(action: Action, trailers: list[tuple[str, str]]) -> None:
    first = gto_message(action, "churn", version="v1.0.0", stage="prod")
    message = render_message(first, trailers)
    parsed_first, parsed = parse_message(message)
    assert parsed_first == first
    assert parsed == [(k, v) for k, v in trailers]


def test_messages_are_gtos_first_lines() -> None:
    assert gto_message(Action.REGISTER, "m", version="v1.2.3") == "Registering artifact m version v1.2.3"
    assert gto_message(Action.ASSIGN, "m", version="v1.2.3", stage="prod") == (
        "Assigning stage prod to artifact m version v1.2.3")


def test_artifact_digests_travel_in_trailers() -> None:
    digests = {"model.skops": "a" * 64, "report.json": "b" * 64}
    message = render_message("Registering artifact m version v1.0.0",
                             [("Actor", "alice"), *artifact_trailers(digests)])
    assert checksums_from_trailers(parse_message(message)[1]) == digests
