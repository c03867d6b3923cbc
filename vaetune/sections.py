"""What every section of a configuration shares: unknown keys refused, no boolean for a number,
and the accepted values worded as pydantic words them. The model stage's sections (vaetune.models)
and the spec's (vaetune.spec) both build on it."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, field_validator

__all__ = ["Section", "one_of"]


class Section(BaseModel):
    # Unknown keys are errors: a typo must not silently fall back to a default.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_numbers(cls, value: Any, info) -> Any:
        # pydantic would read true as 1: a boolean where a number belongs is a mistake to report
        if isinstance(value, bool) and _wants_number(cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean is not a number; give a number here")
        return value


def _wants_number(annotation: Any) -> bool:
    """Whether a field takes a number and not a boolean: int, float, their Optional, a Literal of numbers."""
    args = get_args(annotation)
    if get_origin(annotation) is Literal:
        return all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)
    if args:  # X | None
        return any(_wants_number(a) for a in args if a is not type(None))
    return annotation in (int, float)


def one_of(names) -> str:
    """'a', 'b' or 'c': the accepted values, as pydantic words them for a Literal."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
