"""What every request goes through before routing: counted, then refused with a 4xx or its body made JSON text.

Everything that can fail on the way to a body the routes can read fails here, as an
`InvalidRequest` (answered by `error_handlers.refusal`), so that no such failure reaches
the resolver.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from functions.core.errors import FieldError, InvalidRequest
from functions.core.features import FeatureSpec
from functions.inference import request_body
from functions.inference.async_routes import ASYNC_PATH
from functions.inference.dependencies import RouteDependencies
from functions.inference.front_door import Resolver
from functions.inference.live_model import LiveModel
from functions.inference.metrics import count_predict_request
from functions.inference.openapi_routes import DOCS_PATH, enable_docs
from functions.inference.predict_routes import PREDICT_PATH
from functions.inference.v2_routes import is_infer_path

# The routes that take rows, in JSON or as a CSV body.
ROW_PATHS = frozenset({PREDICT_PATH, ASYNC_PATH})


def admit(request: BaseProxyEvent, app: Resolver, deps: RouteDependencies, *, max_body_bytes: int) -> dict[str, Any]:
    """The event of `request` (the front door's event data class) as the routes read it; InvalidRequest when its
    body is too large or cannot become JSON text.

    Every scoring call (/predict, the Open Inference Protocol's infer) is counted here, refused or not; /docs is
    added to `app` at its first request.
    """
    path = request.path
    if path == PREDICT_PATH or is_infer_path(path):
        count_predict_request(deps.metrics)
    elif path == DOCS_PATH:
        enable_docs(app)
    too_large = _too_large(request, max_body_bytes)
    if too_large is not None:
        raise too_large
    live_model = deps.live_model
    return request_body.normalised(request, csv_paths=ROW_PATHS, csv_spec=lambda: _live_spec(live_model))


def _too_large(request: BaseProxyEvent, max_body_bytes: int) -> InvalidRequest | None:
    """A 413 when the body is over the limit (checked before any parsing)."""
    body = request.body or ""
    size = len(body) * 3 // 4 if request.is_base64_encoded else len(body.encode(errors="surrogatepass"))
    if size <= max_body_bytes:
        return None
    message = f"request body is {size} bytes; the limit is {max_body_bytes}"
    return InvalidRequest(message, [FieldError(("body",), "too_large", message)], status=413)


def _live_spec(live_model: LiveModel) -> FeatureSpec | None:
    predictor = live_model.current().predictor
    return predictor.manifest.feature_spec if predictor is not None else None
