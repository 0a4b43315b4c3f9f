"""Errors a user can act on: each names where the problem is and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class P2PError(Exception):
    """A user-facing error. The CLI renders it on one screen and exits with code 2.

    `file` is the file at fault (a recipe, an image, a checkpoint), `key` the dotted path
    inside it (``model.generator.norm``), `hint` what to do about it.
    """

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 hint: str | None = None, details: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.key = key
        self.hint = hint
        self.details = list(details)

    def with_location(self, *, file: str | None = None, key_prefix: str | None = None) -> P2PError:
        """Return the same error, placed inside a file and/or below a key path."""
        key = self.key
        if key_prefix:
            key = f"{key_prefix}.{key}" if key else key_prefix
        return P2PError(self.message, file=self.file or file, key=key, hint=self.hint, details=self.details)

    def as_dict(self) -> dict:
        """Plain data, to carry the error out of a data-loading worker process intact."""
        return {"message": self.message, "file": self.file, "key": self.key, "hint": self.hint,
                "details": self.details}

    @classmethod
    def from_dict(cls, data: dict) -> P2PError:
        return cls(data["message"], file=data["file"], key=data["key"], hint=data["hint"], details=data["details"])

    def __str__(self) -> str:
        where = " ".join(part for part in (self.file, f"[{self.key}]" if self.key else None) if part)
        text = f"{where}: {self.message}" if where else self.message
        if self.details:
            text += "".join(f"\n  {line}" for line in self.details)
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known spelling of `word`, for "did you mean" suggestions."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None
