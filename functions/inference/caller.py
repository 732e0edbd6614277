"""Who is calling: the identity API Gateway authenticated, as one string that capture and feedback record.

A label is accepted into training and live quality only for predictions its own caller
made (functions.core.feedback.LabelJoin), and each caller's share of a run's training rows
is capped (functions.core.labelled.cap_labelled): so the identity must be one the front
door verified, never one the body or a header claims.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def caller_of(request_context: Mapping[str, Any] | None) -> str | None:
    """`iam:<arn>` (SigV4), `jwt:<client or subject>` (a JWT authorizer), `key:<API key id>`; None when unknown."""
    context = request_context or {}
    identity = context.get("identity") or {}
    authorizer = context.get("authorizer") or {}
    claims = authorizer.get("claims") or (authorizer.get("jwt") or {}).get("claims") or {}
    # SigV4: a REST API names the caller in identity; an HTTP API or a function URL (payload 2.0) in authorizer.iam.
    user_arn = identity.get("userArn") or (authorizer.get("iam") or {}).get("userArn")
    if user_arn:
        return f"iam:{user_arn}"
    if claims.get("client_id") or claims.get("sub"):
        return f"jwt:{claims.get('client_id') or claims.get('sub')}"
    if identity.get("apiKeyId"):
        return f"key:{identity['apiKeyId']}"
    return None
