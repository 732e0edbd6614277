"""The project's exceptions, each mapped to one HTTP status (or to plan B) in one place."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldError:
    """One broken rule at one location of the request body."""

    loc: tuple[str | int, ...]
    type: str
    msg: str

    def as_dict(self) -> dict[str, object]:
        return {"loc": list(self.loc), "type": self.type, "msg": self.msg}


@dataclass
class InvalidRequest(Exception):
    """The request body breaks the input contract (HTTP 422, or `status` when set)."""

    message: str
    errors: list[FieldError] = field(default_factory=list)
    status: int = 422

    def __str__(self) -> str:
        return self.message


class ServiceUnavailable(Exception):
    """The deployment cannot serve this route now (no live model, async not configured): HTTP 503."""


class ModelUnavailable(Exception):
    """The live model cannot answer (no live version, bundle missing or corrupt): plan B answers."""


class BundleError(Exception):
    """A model bundle is malformed or fails its contract (parity, schema, hash)."""


class RegistryError(Exception):
    """The model registry cannot be read or moved as asked."""


class MalformedEvent(ValueError):
    """A Lambda event, or one of its records, is not the shape its handler takes: no retry can help.

    The name is what Step Functions' Retry and Catch see (a task never retries it).
    """


class RecipeError(ValueError):
    """The training recipe cannot be trained as written; the message says what to change."""


class ChangedMeanwhile(RuntimeError):
    """Another run rewrote an object (the training table's ledger) after this one read it; this write is refused."""
