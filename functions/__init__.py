"""Slipway's Lambda code. A package that ships its dependencies zipped makes them importable first."""

from functions.dependencies import unpack as _unpack

_unpack()
