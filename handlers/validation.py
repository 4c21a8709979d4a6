"""Turn a pydantic validation error from a command model into one sentence for the user, and read the
few numbers chat text carries."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from handlers.errors import UsageError

Model = TypeVar("Model", bound=BaseModel)
# ASCII digits only: str.isdigit() and int() also take "²" or "٣", and int() refuses 4,300+ digits.
_NUMBER = re.compile(r"[0-9]{1,19}")


def whole_number(text: str, low: int, high: int) -> int | None:
    """``text`` as a whole number from ``low`` to ``high`` written in ASCII digits, else None."""
    if not _NUMBER.fullmatch(text.lstrip("0") or "0"):
        return None
    number = int(text.lstrip("0") or "0")
    return number if low <= number <= high else None


def first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    field = ".".join(str(part) for part in error["loc"] if part)
    if error["type"] == "value_error" or not field:
        return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return f"{field}: {message}."


def build(model: type[Model], usage: Callable[[str], UsageError], **fields: Any) -> Model:
    """Construct a command model; a validation failure becomes a UsageError showing the command's forms."""
    try:
        return model(**fields)
    except ValidationError as exc:
        raise usage(first_problem(exc)) from exc
