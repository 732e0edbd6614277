"""The Open Inference Protocol (v2, REST) that KServe, Triton and MLServer speak: health, model metadata, infer.

The live model is the one model served, named by the stage's inference.model_name, else after its recipe
(`model.examples.iris` is `iris`); a canary's candidate is served beside it as a second version. An infer
request's tensors become rows, and the rows are scored by the same path as POST /predict
(`predict_routes.score`: canonicalisation, capture, metrics, the row limit), so both answer identical rows
identically. Its inputs are either one tensor per feature (named by the feature, shape [n] or [n, 1]) or a
single tensor of shape [n, features], in GET /model's feature order. Errors are `{"error": "..."}`, as the
protocol says (functions.inference.error_handlers).
"""

from __future__ import annotations

import re
from math import prod
from typing import Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, Field

from functions.core.errors import FieldError, InvalidRequest, ServiceUnavailable
from functions.core.features import FeatureSpec, FeatureType
from functions.core.manifest import Manifest
from functions.core.predictor import Predictor
from functions.inference.dependencies import RouteDependencies, request_config
from functions.inference.predict_routes import score
from functions.inference.schemas import BODY_ERRORS, InferenceErrorBody, dump_json, route_responses
from functions.inference.service import served_versions, version_not_served
from functions.inference.validated_body import validated_body

V2_PREFIX = "/v2/"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
MODEL_PATH = "/v2/models/<model_name>"
INFER_PATH = "/v2/models/<model_name>/infer"
MODEL_READY_PATH = "/v2/models/<model_name>/ready"
VERSION_PATH = "/v2/models/<model_name>/versions/<version>"
VERSION_READY_PATH = "/v2/models/<model_name>/versions/<version>/ready"
VERSION_INFER_PATH = "/v2/models/<model_name>/versions/<version>/infer"
_INFER = re.compile(r"^/v2/models/[^/]+/(versions/[^/]+/)?infer$")
JSON = content_types.APPLICATION_JSON

Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip
_DATATYPES = {
    FeatureType.NUMBER: "FP64",
    FeatureType.INTEGER: "INT64",
    FeatureType.CATEGORY: "BYTES",
    FeatureType.BOOLEAN: "BOOL",
}


def is_infer_path(path: str) -> bool:
    """Whether `path` is an infer request's (counted with /predict's requests)."""
    return _INFER.match(path) is not None


def is_v2_path(path: str) -> bool:
    """Whether `path` is the protocol's, whose errors are `{"error": ...}`."""
    return path.startswith(V2_PREFIX)


class Tensor(BaseModel):
    name: str = Field(min_length=1)
    datatype: Datatype
    shape: list[int] = Field(min_length=1, description="-1 for a dimension of any size (metadata only).")


class TensorData(Tensor):
    """A tensor with its values: row-major, flat or nested as its shape."""

    shape: list[int] = Field(min_length=1, max_length=2)
    data: list[Any] = Field(description="The values, row-major; flat or nested.")
    parameters: dict[str, Any] | None = None


class RequestedOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[TensorData] = Field(min_length=1, description="One tensor per feature, or one [rows, features].")
    outputs: list[RequestedOutput] | None = Field(None, description="The outputs to answer; all when absent.")


class InferResponse(BaseModel):
    model_name: str
    model_version: str | None = Field(description="The version that answered: the live one, or a canary's candidate.")
    id: str | None = None
    parameters: dict[str, Any] | None = Field(
        None, description='{"fallback": why} when plan B answered instead of the model (as /predict flags it).'
    )
    outputs: list[TensorData] = Field(description="predictions, and probabilities for a classifier.")


class ModelMetadata(BaseModel):
    name: str
    versions: list[str] = Field(description="The served versions: the live one, then a canary's candidate.")
    platform: str
    inputs: list[Tensor] = Field(description="One tensor per feature, in the model's feature order.")
    outputs: list[Tensor]


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


def _ok(model: type[BaseModel], *errors: int) -> dict[int, Any]:
    return route_responses(200, "OK", model, *errors, error_model=InferenceErrorBody)


def router(deps: RouteDependencies) -> APIGatewayRouter:
    """The protocol's routes, scoring through `predict_routes.score` with `deps`."""
    v2_router = APIGatewayRouter()
    live_model = deps.live_model

    def _configured() -> str | None:
        return request_config(v2_router).model_name

    @v2_router.get(LIVE_PATH, summary="Open Inference Protocol: the server is live", responses=_ok(Live))
    def live() -> Response[str]:
        return Response(status_code=200, content_type=JSON, body=Live(live=True).model_dump_json())

    @v2_router.get(
        READY_PATH,
        summary="Open Inference Protocol: the server is ready (the live model is loaded); 400 when not",
        responses=_ok(Ready, 400),
    )
    def ready() -> Response[str]:
        serving = live_model.current()
        if serving.predictor is None:
            body = InferenceErrorBody(error=f"not ready: no live model is loaded ({serving.reason})")
            return Response(status_code=400, content_type=JSON, body=body.model_dump_json())
        return Response(status_code=200, content_type=JSON, body=Ready(ready=True).model_dump_json())

    @v2_router.get(
        MODEL_PATH,
        summary="Open Inference Protocol: the model's metadata (a tensor per feature, the outputs)",
        responses=_ok(ModelMetadata, 404, 503),
    )
    def metadata(model_name: str) -> Response[str]:
        return _metadata_of(deps, _configured(), model_name, None)

    @v2_router.get(
        VERSION_PATH,
        summary="Open Inference Protocol: a served version's metadata (the live one, or a canary's candidate)",
        responses=_ok(ModelMetadata, 404, 503),
    )
    def version_metadata(model_name: str, version: str) -> Response[str]:
        return _metadata_of(deps, _configured(), model_name, version)

    @v2_router.get(
        MODEL_READY_PATH,
        summary="Open Inference Protocol: the model is loaded and ready; 404 for another name, 503 when not loaded",
        responses=_ok(Ready, 404, 503),
    )
    def model_ready(model_name: str) -> Response[str]:
        _served(deps, _configured(), model_name, None)
        return Response(status_code=200, content_type=JSON, body=Ready(ready=True).model_dump_json())

    @v2_router.get(
        VERSION_READY_PATH,
        summary="Open Inference Protocol: that version is loaded and answers; 404 when it is not served",
        responses=_ok(Ready, 404, 503),
    )
    def version_ready(model_name: str, version: str) -> Response[str]:
        _served(deps, _configured(), model_name, version)
        return Response(status_code=200, content_type=JSON, body=Ready(ready=True).model_dump_json())

    @v2_router.post(
        INFER_PATH,
        summary="Open Inference Protocol: score rows sent as tensors (answered as POST /predict answers them)",
        responses=_ok(InferResponse, *BODY_ERRORS, 404, 503),
    )
    @validated_body(v2_router, InferRequest)
    def infer(request: InferRequest, model_name: str) -> Response[str]:
        return _infer(request, model_name, None)

    @v2_router.post(
        VERSION_INFER_PATH,
        summary="Open Inference Protocol: score rows with that served version alone, whatever the rollout's split",
        responses=_ok(InferResponse, *BODY_ERRORS, 404, 503),
    )
    @validated_body(v2_router, InferRequest)
    def version_infer(request: InferRequest, model_name: str, version: str) -> Response[str]:
        return _infer(request, model_name, version)

    def _infer(request: InferRequest, model_name: str, version: str | None) -> Response[str]:
        manifest = _served(deps, _configured(), model_name, version).manifest
        rows = _rows(request.inputs, manifest.feature_spec, request_config(v2_router).max_instances)
        outcome, request_id = score(v2_router, deps, rows, version=version)
        answered = outcome.predictor.manifest if outcome.predictor is not None else manifest
        outputs = _outputs(answered, outcome.predictions)
        if request.outputs is not None:
            outputs = _requested(outputs, [output.name for output in request.outputs])
        # Plan B answered (the live graph failed): flagged as /predict flags each prediction.
        parameters = {"fallback": outcome.fallback_reason} if outcome.fallback_reason is not None else None
        body = InferResponse(
            model_name=model_name, model_version=outcome.version, id=request.id, parameters=parameters, outputs=outputs
        )
        return Response(status_code=200, content_type=JSON, body=dump_json(body), headers={"X-Request-Id": request_id})

    return v2_router


def model_name_of(manifest: Manifest, configured: str | None = None) -> str:
    """The name the protocol serves the model under: the stage's inference.model_name, else its recipe's last part."""
    return configured or manifest.lineage.recipe.rsplit(".", 1)[-1]


def _served(deps: RouteDependencies, configured: str | None, model_name: str, version: str | None) -> Predictor:
    """The predictor serving `model_name` (at `version`: the live one or a canary's candidate; else the live one).
    503 without a live model; 404 for another name or a version not served."""
    serving = deps.live_model.current()
    if serving.predictor is None:
        raise ServiceUnavailable(f"no live model is loaded ({serving.reason})")
    served = model_name_of(serving.predictor.manifest, configured)
    if model_name != served:
        message = f"no model {model_name[:100]!r}: this server serves {served!r}"
        raise InvalidRequest(message, [FieldError(("path", "model_name"), "not_found", message)], status=404)
    if version is None:
        return serving.predictor
    versions = served_versions(serving)
    if version not in versions:
        raise version_not_served(version, versions)
    return versions[version]


def _metadata_of(
    deps: RouteDependencies, configured: str | None, model_name: str, version: str | None
) -> Response[str]:
    manifest = _served(deps, configured, model_name, version).manifest
    metadata = _metadata(manifest, model_name, list(served_versions(deps.live_model.current())))
    return Response(status_code=200, content_type=JSON, body=metadata.model_dump_json())


def _metadata(manifest: Manifest, name: str, versions: list[str]) -> ModelMetadata:
    inputs = [Tensor(name=f.name, datatype=_DATATYPES[f.type], shape=[-1]) for f in manifest.feature_spec.features]
    return ModelMetadata(
        name=name,
        versions=versions,
        platform="onnxruntime_onnx",
        inputs=inputs,
        outputs=_output_tensors(manifest),
    )


def _output_tensors(manifest: Manifest) -> list[Tensor]:
    if manifest.task == "classification":
        classes = len(manifest.classes or ())
        return [
            Tensor(name="predictions", datatype="BYTES", shape=[-1]),
            Tensor(name="probabilities", datatype="FP64", shape=[-1, classes]),
        ]
    return [Tensor(name="predictions", datatype="FP64", shape=[-1])]


def _rows(inputs: list[TensorData], spec: FeatureSpec, max_rows: int) -> list[dict[str, Any]]:
    """The rows the tensors hold, feature name to value; InvalidRequest naming the tensor that cannot be read."""
    names = spec.names
    columns: dict[str, list[Any]] = {}
    if len(inputs) == 1 and inputs[0].name not in names:
        (tensor,) = inputs
        values = _values(tensor, 0)
        if len(tensor.shape) != 2 or tensor.shape[1] != len(names):
            raise _refused(0, f"a single tensor holds rows of every feature: shape [rows, {len(names)}]")
        width = len(names)
        columns = {name: values[i::width] for i, name in enumerate(names)}
    else:
        for index, tensor in enumerate(inputs):
            if tensor.name not in names:
                raise _refused(index, f"no feature {tensor.name[:100]!r}: the inputs are {', '.join(names)}")
            if len(tensor.shape) == 2 and tensor.shape[1] != 1:
                raise _refused(index, "a feature's tensor has shape [rows] or [rows, 1]")
            if tensor.name in columns:
                raise _refused(index, f"feature {tensor.name!r} is sent twice")
            columns[tensor.name] = _values(tensor, index)
    counts = {len(column) for column in columns.values()}
    if len(counts) != 1:
        raise _refused(0, "every input tensor must hold the same number of rows")
    count = counts.pop()
    if count == 0 or count > max_rows:
        raise _refused(0, f"the inputs hold {count} rows; send 1 to {max_rows}")
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _values(tensor: TensorData, index: int) -> list[Any]:
    """The tensor's values, flat, checked against its shape."""
    flat = _flat(tensor.data)
    if any(size < 0 for size in tensor.shape) or prod(tensor.shape) != len(flat):
        raise _refused(index, f"shape {tensor.shape} does not hold the {len(flat)} values sent")
    return flat


def _flat(data: list[Any]) -> list[Any]:
    if not any(isinstance(value, list) for value in data):
        return data
    return [item for value in data for item in (_flat(value) if isinstance(value, list) else [value])]


def _refused(index: int, message: str) -> InvalidRequest:
    return InvalidRequest(message, [FieldError(("inputs", index), "tensor", message)], status=422)


def _outputs(manifest: Manifest, predictions: list[dict[str, Any]]) -> list[TensorData]:
    count = len(predictions)
    if manifest.task != "classification":
        values = [prediction["value"] for prediction in predictions]
        return [TensorData(name="predictions", datatype="FP64", shape=[count], data=values)]
    classes = list(manifest.classes or ())
    labels = [prediction["label"] for prediction in predictions]
    probabilities = [
        (prediction["probabilities"] or {}).get(name, 0.0) for prediction in predictions for name in classes
    ]
    return [
        TensorData(name="predictions", datatype="BYTES", shape=[count], data=labels),
        # The class of each column, as the tensor's parameters (clients read them with the data).
        TensorData(
            name="probabilities",
            datatype="FP64",
            shape=[count, len(classes)],
            data=probabilities,
            parameters={"classes": classes},
        ),
    ]


def _requested(outputs: list[TensorData], names: list[str]) -> list[TensorData]:
    known = {output.name: output for output in outputs}
    unknown = [name for name in names if name not in known]
    if unknown:
        message = f"no output {unknown[0][:100]!r}: the outputs are {', '.join(known)}"
        raise InvalidRequest(message, [FieldError(("outputs",), "unknown_output", message)], status=422)
    return [known[name] for name in names]
