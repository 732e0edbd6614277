"""Traffic for the local loop: rows of the recipe's data, shifted or not, sent to the gateway over HTTP.

`slipway demo` and the local-loop benchmark use it to play the clients: one
request per row, then the true labels of some rows through POST /feedback.
"""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from functions.training.train import DEFAULT_RECIPE, load_recipe, load_table

FEEDBACK_BATCH = 1000  # FeedbackRequest's maximum number of items


class TrafficError(RuntimeError):
    """The gateway answered a request with an error status."""


@dataclass(frozen=True)
class Rows:
    """Instances to send, with their true labels."""

    instances: list[dict[str, Any]]
    labels: list[Any]


@dataclass(frozen=True)
class Served:
    """What the gateway answered for one row: the request id to send feedback with, and the version."""

    request_id: str
    model_version: str | None


def example_rows(count: int, *, seed: int, recipe_name: str = DEFAULT_RECIPE) -> Rows:
    """`count` rows of the recipe's load_data() in a reproducible shuffled order, each row once before any repeats.

    Each row once keeps a sample as close to the training distribution as its size allows (drawing with
    replacement moves a few features' statistics near their drift thresholds by chance alone).
    """
    columns, target = load_table(load_recipe(recipe_name))
    rng = np.random.default_rng(seed)
    rounds = -(-count // len(target))
    picks = np.concatenate([rng.permutation(len(target)) for _ in range(rounds)])[:count]
    names = list(columns)
    instances = [{name: _json_value(columns[name][i]) for name in names} for i in picks]
    return Rows(instances=instances, labels=[_json_value(target[i]) for i in picks])


def _json_value(value: Any) -> Any:
    """A table cell as a request carries it: a number, a text, a boolean, or None when missing."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value)  # NumPy's str_ as a plain str
    if isinstance(value, bool | np.bool_):
        return bool(value)
    number = float(value)
    return None if math.isnan(number) else number


def shifted(
    rows: Rows, factors: Mapping[str, float], *, where: Callable[[Mapping[str, Any]], bool] | None = None
) -> Rows:
    """The same rows with some features multiplied (a recalibrated instrument, a new population);
    with `where`, only in the rows it selects (one segment's traffic)."""
    instances = [
        {
            name: value * factors.get(name, 1.0) if isinstance(value, float) else value
            for name, value in instance.items()
        }
        if where is None or where(instance)
        else instance
        for instance in rows.instances
    ]
    return Rows(instances=instances, labels=rows.labels)


class Client:
    """A keep-alive HTTP client for the local gateway."""

    def __init__(self, base_url: str, *, timeout: float = 30.0) -> None:
        split = urlsplit(base_url)
        self._connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=timeout)

    def post(self, path: str, body: Any) -> tuple[dict[str, Any], dict[str, str]]:
        self._connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = self._connection.getresponse()
        data = response.read()
        if response.status not in (200, 202):  # /feedback stores and answers 202
            raise TrafficError(f"POST {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data), {name.lower(): value for name, value in response.getheaders()}

    def close(self) -> None:
        self._connection.close()


def serve(base_url: str, instances: Sequence[Mapping[str, Any]]) -> list[Served]:
    """POST /predict once per row; what each request answered."""
    served = []
    with closing(Client(base_url)) as client:
        for instance in instances:
            body, headers = client.post("/predict", {"instances": [instance]})
            served.append(Served(request_id=headers["x-request-id"], model_version=body.get("model_version")))
    return served


def send_feedback(base_url: str, served: Sequence[Served], labels: Sequence[Any]) -> int:
    """POST /feedback with the true label of each served one-row request; the number of items accepted."""
    items = [{"request_id": s.request_id, "row": 0, "label": label} for s, label in zip(served, labels, strict=True)]
    accepted = 0
    with closing(Client(base_url)) as client:
        for start in range(0, len(items), FEEDBACK_BATCH):
            body, _ = client.post("/feedback", {"items": items[start : start + FEEDBACK_BATCH]})
            accepted += int(body["accepted"])
    return accepted
