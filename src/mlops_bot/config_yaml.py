"""Reading a YAML file someone else wrote (`.github/mlops.yml`, a repository's `.gto`) without letting
it bomb us: one clear `ConfigError` line with file:line instead of a traceback, a stall or a
MemoryError.

- at most `MAX_BYTES` of input, and it must be UTF-8;
- at most `MAX_DEPTH` levels of nesting (checked while composing, before Python's recursion limit);
- aliases may add at most `ALIAS_BUDGET` nodes to the expanded document (a billion-laughs file is
  refused at the first alias past the budget: sizes are memoised per node, nothing is expanded);
- a key given twice in one mapping is an error (YAML says keys are unique; PyYAML keeps the last);
- recursive aliases are refused.

`line_of` finds the line of a key path (a pydantic error location) by following the path through the
composed node graph, one step per key, so an alias is never expanded to find a position.
Built on PyYAML's pure-Python safe loader (`SafeConstructor`: plain data only, no Python objects).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from mlops_bot.errors import ConfigError

MAX_BYTES = 1024 * 1024  # a config is a few KB; 1 MiB is generous
MAX_DEPTH = 64  # nesting levels; a config uses fewer than 10
ALIAS_BUDGET = 10_000  # nodes that aliases may add to the expanded document


class _Refused(yaml.YAMLError):
    """Raised inside the composer; turned into a ConfigError with the key path and line."""

    def __init__(self, message: str, line: int, path: Sequence[str]) -> None:
        super().__init__(message)
        self.message, self.line, self.path = message, line, tuple(path)


class _BoundedComposer(Composer):
    """PyYAML's composer plus a depth limit, an alias expansion budget and duplicate-key checks."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._path: list[str] = []
        self._sizes: dict[int, int] = {}  # id(node) -> nodes in its full expansion
        self._expanded = 0  # nodes added by aliases so far

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # Parser's, mixed in below
        line = event.start_mark.line + 1
        key = _path_step(parent, index)
        if key is not None:
            self._path.append(key)
        try:
            if isinstance(event, AliasEvent):
                node = super().compose_node(parent, index)
                size = self._sizes.get(id(node))
                if size is None:
                    raise _Refused(f"alias *{event.anchor} refers to a node that contains it", line,
                                   self._path)
                self._expanded += size
                if self._expanded > ALIAS_BUDGET:
                    raise _Refused(
                        f"aliases expand the document past {ALIAS_BUDGET:,} nodes (at *{event.anchor}); "
                        "a config needs no more: write the values out or use fewer aliases",
                        line, self._path,
                    )
                return node
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested deeper than {MAX_DEPTH} levels", line, self._path)
            node = super().compose_node(parent, index)
            self._depth -= 1
            size = 1
            for child in _children(node):
                size += self._sizes.get(id(child), 0)
            self._sizes[id(node)] = size
            return node
        finally:
            if key is not None:
                self._path.pop()

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                continue
            line = key.start_mark.line + 1
            first = seen.get((key.tag, key.value))
            seen.setdefault((key.tag, key.value), line)
            if first is not None:
                raise _Refused(
                    f"key {key.value!r} is given twice (first at line {first}); remove one",
                    line, [*self._path, str(key.value)],
                )
        return node


def _path_step(parent: Node | None, index: Any) -> str | None:
    if isinstance(parent, MappingNode) and isinstance(index, ScalarNode):
        return str(index.value)
    if isinstance(parent, SequenceNode) and isinstance(index, int):
        return str(index)
    return None


def _children(node: Node | None) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


class BoundedSafeLoader(Reader, Scanner, Parser, _BoundedComposer, SafeConstructor, Resolver):
    """yaml.SafeLoader with the bounded composer."""

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    text: str


def too_large(source: str) -> ConfigError:
    """The one error for a config past `MAX_BYTES` (a reader may stop at `MAX_BYTES` + 1 bytes, so
    it does not say how big the file is)."""
    return ConfigError(source, "", f"file is larger than {MAX_BYTES:,} bytes, the most a config may have")


def decode(raw: bytes, source: str) -> str:
    """The file's text, or one line saying it is too big or not UTF-8 (with the line of the bad byte)."""
    if len(raw) > MAX_BYTES:
        raise too_large(source)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1].hex()
        message = f"not UTF-8 text (byte 0x{byte}); save the file as UTF-8"
        raise ConfigError(source, "", message, line) from None


def compose(text: str, source: str) -> Node | None:
    """The node graph of a single-document YAML text, bounded as above."""
    return _run(text, source, lambda loader: loader.get_single_node())


def loads(text: str | bytes, source: str) -> Any:
    """Plain data (dicts, lists, scalars) from YAML text, bounded as above. Raises ConfigError."""
    if isinstance(text, bytes):
        text = decode(text, source)
    elif len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise too_large(source)
    return _run(text, source, lambda loader: loader.get_single_data())


def load_file(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file: missing, unreadable, too big, not UTF-8 or bombed -> ConfigError."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), "", "file not found") from None
    except OSError as exc:
        raise ConfigError(str(path), "", f"cannot read file: {exc.strerror}") from None
    text = decode(raw, str(path))
    return YamlDocument(loads(text, str(path)), text)


def _run(text: str, source: str, step: Any) -> Any:
    loader = BoundedSafeLoader(text)
    try:
        return step(loader)
    except _Refused as exc:
        raise ConfigError(source, ".".join(exc.path), exc.message, exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, "", f"invalid YAML: {problem}", line) from None
    except RecursionError:  # a parser path we did not bound; never a traceback
        raise ConfigError(source, "", f"nested too deeply (limit {MAX_DEPTH} levels)") from None
    finally:
        loader.dispose()


def line_of(text: str, path: Sequence[str], source: str = "") -> int | None:
    """1-based line of the deepest key of `path` found in the document (None when none is found or
    the text does not parse). Follows the path through the node graph: aliases are not expanded."""
    try:
        node = compose(text, source)
    except ConfigError:
        return None
    line = None
    for step in path:
        if isinstance(node, MappingNode):
            match = next(((k, v) for k, v in reversed(node.value)
                          if isinstance(k, ScalarNode) and str(k.value) == step), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, SequenceNode) and step.isdigit() and int(step) < len(node.value):
            node = node.value[int(step)]
            line = node.start_mark.line + 1
        else:
            break
    return line
