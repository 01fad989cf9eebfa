"""Checks of what is read from a user's file, before anything uses it: each failure is one
GanbenchError line that names the file and what is wrong with it."""

import json
import math
import re

from ganbench.errors import GanbenchError

MAX_INT = 2**63 - 1  # what every reader of ours stores a count or a step in
MAX_NESTING = 32  # ganbench's own files nest 3 deep; json.dumps of a deeper value could exhaust the stack
SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_json(text, source) -> object:
    """The JSON value of `text` (str or bytes); bad JSON, bad UTF-8 or nesting deeper than Python
    recurses are one error naming `source`."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).splitlines()[0]
        raise GanbenchError(f"{source}: not valid JSON ({reason})") from None
    if nesting(value) > MAX_NESTING:
        raise GanbenchError(f"{source}: JSON nested more than {MAX_NESTING} levels deep")
    return value


def nesting(value) -> int:
    """How deeply lists and objects nest in a JSON value (0 for a scalar), without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            pending.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path, what: str = "JSON file") -> object:
    """The JSON value of the file at `path`; unreadable files are one error naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GanbenchError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    return parse_json(data, path)


def json_object(value, source, what: str) -> dict:
    if not isinstance(value, dict):
        raise GanbenchError(f"{source}: {what} must be a JSON object, got {type_name(value)}")
    return value


def integer(value, source, what: str, low: int = 0, high: int = MAX_INT) -> int:
    """An int (not a bool) in [low, high]."""
    if type(value) is not int:
        raise GanbenchError(f"{source}: {what} must be an integer, got {type_name(value)}")
    if not low <= value <= high:
        raise GanbenchError(f"{source}: {what} must be in [{low}, {high}], got {value}")
    return value


def number(value, source, what: str) -> float:
    """A finite int or float (not a bool)."""
    if type(value) not in (int, float) or not math.isfinite(value):
        raise GanbenchError(f"{source}: {what} must be a finite number, got {short(value)}")
    return float(value)


def string(value, source, what: str, pattern: re.Pattern | None = None) -> str:
    if not isinstance(value, str):
        raise GanbenchError(f"{source}: {what} must be a string, got {type_name(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise GanbenchError(f"{source}: {what} is malformed ({short(value)})")
    return value


def type_name(value) -> str:
    return "null" if value is None else {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), short(value))


def short(value) -> str:
    """repr, cut to 40 characters: a hostile value is named, never printed whole."""
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits
        return "a huge number"
    return text if len(text) <= 40 else text[:37] + "..."
