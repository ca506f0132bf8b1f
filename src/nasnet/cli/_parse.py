"""Small parsers shared by commands: `KEY=VALUE` items whose value is JSON when it parses."""

from __future__ import annotations

import json
from typing import Any

from ..errors import NasnetError


def parse_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false/null, lists), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def split_sets(items: list[str] | None, flag: str) -> tuple[dict, dict]:
    """`FIELD=VALUE` / `train.FIELD=VALUE` / `model.FIELD=VALUE` items -> (train overrides, model overrides)."""
    train, model = {}, {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise NasnetError(f"{flag} {item!r}: expected FIELD=VALUE (e.g. {flag} cutout=16 or {flag} "
                              "model.dropout=0.5)")
        if key.startswith("model."):
            model[key[6:]] = parse_value(value)
        else:
            train[key.removeprefix("train.")] = parse_value(value)
    return train, model
