"""Maven versions, ordered like Maven's ``ComparableVersion``.

Our own port of the algorithm (no Python library follows Maven's current rules). A version is parsed,
case-insensitively, into a list of items:

* ``.`` separates items, ``-`` starts a nested sub-list, and so does a switch between digits and
  letters (``1a1`` is ``1-a-1``); an empty item is 0;
* an integer item; a string item ("qualifier"); a list item;
* ``a1``/``b1``/``m1`` (a single letter followed by a digit) mean alpha/beta/milestone;
  ``ga``, ``final`` and ``release`` mean the empty qualifier, ``cr`` means ``rc``;
* trailing "null" items (0, the empty qualifier, empty lists) are dropped from every list.

Items compare as: known qualifiers ``alpha < beta < milestone < rc < snapshot < "" < sp``, then
unknown qualifiers (alphabetically), then lists, then integers. A missing item is compared as
"null": ``1-alpha < 1 < 1-sp < 1-foo < 1-1 < 1.1``.

Every string parses, so ``is_valid`` only checks that the version starts like a Maven version
(a digit, with no whitespace).
"""

from __future__ import annotations

import re
from typing import TypeAlias

from portwarden.core.vulns.versions.base import ParsingComparator, sign

_INT = 0
_STRING = 1
_LIST = 2

_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_RELEASE_RANK = str(_QUALIFIERS.index(""))
_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_SHORT_QUALIFIERS = {"a": "alpha", "b": "beta", "m": "milestone"}
_VALID_MAVEN = re.compile(r"^[0-9][^\s]*$")

# (_INT, value) | (_STRING, comparable qualifier) | (_LIST, items)
Item: TypeAlias = tuple[int, int] | tuple[int, str] | tuple[int, tuple["Item", ...]]


def _comparable_qualifier(qualifier: str) -> str:
    """Known qualifiers rank by position, unknown ones after them, alphabetically (Maven's trick)."""
    if qualifier in _QUALIFIERS:
        return str(_QUALIFIERS.index(qualifier))
    return f"{len(_QUALIFIERS)}-{qualifier}"


def _string_item(text: str, followed_by_digit: bool) -> Item:
    if followed_by_digit and text in _SHORT_QUALIFIERS:
        text = _SHORT_QUALIFIERS[text]
    return (_STRING, _comparable_qualifier(_ALIASES.get(text, text)))


def _parse_item(is_digit: bool, text: str) -> Item:
    return (_INT, int(text)) if is_digit else _string_item(text, followed_by_digit=False)


def _is_null(item: Item) -> bool:
    kind, value = item
    if kind == _INT:
        return value == 0
    if kind == _STRING:
        return value == _RELEASE_RANK
    return not value


class _ListBuilder:
    """A mutable list while parsing; frozen into nested tuples once normalized."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: list[Item | _ListBuilder] = []

    def freeze(self, *, root: bool = True) -> Item:
        frozen = [item.freeze(root=False) if isinstance(item, _ListBuilder) else item for item in self.items]
        # drop trailing nulls; a non-null list item does not stop the trimming (Maven's normalize)
        index = len(frozen) - 1
        while index >= 0:
            if _is_null(frozen[index]):
                del frozen[index]
            elif frozen[index][0] != _LIST:
                break
            index -= 1
        # The version-order specification trims nulls "at each remaining hyphen", so 1-ga-1 and 1-0-1
        # equal 1-1; ComparableVersion would keep an extra nesting level ([[1]]) there. A list whose
        # only item is a list is that list (below the top level, which stays the version's list).
        if not root and len(frozen) == 1 and frozen[0][0] == _LIST:
            return frozen[0]
        return (_LIST, tuple(frozen))


def parse_maven(version: str) -> Item:
    text = version.strip().lower()
    root = _ListBuilder()
    current = root
    is_digit = False
    start = 0

    def open_sublist() -> _ListBuilder:
        sublist = _ListBuilder()
        current.items.append(sublist)
        return sublist

    for index, char in enumerate(text):
        if char == ".":
            current.items.append((_INT, 0) if index == start else _parse_item(is_digit, text[start:index]))
            start = index + 1
        elif char == "-":
            current.items.append((_INT, 0) if index == start else _parse_item(is_digit, text[start:index]))
            start = index + 1
            current = open_sublist()
        elif char.isdecimal():
            if not is_digit and index > start:
                current.items.append(_string_item(text[start:index], followed_by_digit=True))
                start = index
                current = open_sublist()
            is_digit = True
        else:
            if is_digit and index > start:
                current.items.append(_parse_item(True, text[start:index]))
                start = index
                current = open_sublist()
            is_digit = False
    if len(text) > start:
        current.items.append(_parse_item(is_digit, text[start:]))
    return root.freeze()


def _compare_with_null(item: Item) -> int:
    kind, value = item
    if kind == _INT:
        return 1 if value else 0
    if kind == _STRING:
        assert isinstance(value, str)
        return -1 if value < _RELEASE_RANK else (1 if value > _RELEASE_RANK else 0)
    assert isinstance(value, tuple)
    for child in value:
        result = _compare_with_null(child)
        if result:
            return result
    return 0


def compare_items(left: Item | None, right: Item | None) -> int:
    if left is None:
        return 0 if right is None else -_compare_with_null(right)
    if right is None:
        return _compare_with_null(left)
    left_kind, left_value = left
    right_kind, right_value = right
    if left_kind != right_kind:
        # integers > lists > strings
        order = {_INT: 2, _LIST: 1, _STRING: 0}
        return sign(order[left_kind] - order[right_kind])
    if left_kind == _INT:
        assert isinstance(left_value, int) and isinstance(right_value, int)
        return sign(left_value - right_value)
    if left_kind == _STRING:
        assert isinstance(left_value, str) and isinstance(right_value, str)
        return -1 if left_value < right_value else (1 if left_value > right_value else 0)
    assert isinstance(left_value, tuple) and isinstance(right_value, tuple)
    for index in range(max(len(left_value), len(right_value))):
        result = compare_items(
            left_value[index] if index < len(left_value) else None,
            right_value[index] if index < len(right_value) else None,
        )
        if result:
            return result
    return 0


class MavenComparator(ParsingComparator):
    name = "maven"

    def _parse(self, version: str) -> Item:
        return parse_maven(version)

    def _compare_parsed(self, a: Item, b: Item) -> int:
        return 0 if a == b else compare_items(a, b)

    def is_valid(self, version: str) -> bool:
        return _VALID_MAVEN.match(version.strip()) is not None
