"""The error a user sees for a mistake in a search space, and the one validators raise inside pydantic."""

from __future__ import annotations

from typing import Any

from vaetune.errors import UserError


class SpecError(UserError, ValueError):
    """A user mistake in a search space or an override, described for a person to fix."""

    def __init__(self, source: str, key: str, value: Any, accepted: str):
        self.source, self.key, self.value, self.accepted = source, key, value, accepted
        super().__init__(f"{source}: {key}: got {value!r}; {accepted}")


class CrossFieldError(ValueError):
    """Raised inside a validator to blame a key other than the one pydantic is at (e.g. a model
    check that blames data.image_size); vaetune.spec turns it into a SpecError for that key."""

    def __init__(self, key: str, value: Any, accepted: str):
        self.key, self.value, self.accepted = key, value, accepted
        super().__init__(f"{key}: {accepted}")
