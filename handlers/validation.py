"""Turn a pydantic validation error from a command model into one sentence for the user."""

from __future__ import annotations

from pydantic import ValidationError


def first_problem(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    field = ".".join(str(part) for part in error["loc"] if part)
    if error["type"] == "value_error" or not field:
        return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
    return f"{field}: {message}."
