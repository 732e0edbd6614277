"""The front door a stage chooses (`api.type`): which Powertools resolver reads its events, and their data class.

- rest: an API Gateway REST API sends proxy events (payload format 1.0);
- http: an API Gateway HTTP API sends payload format 2.0;
- function_url: a Lambda function URL sends payload format 2.0 too (its stage is always `$default`).

Every type gets the same routers, answers and limits; only the event's shape differs, and
`admission` reads it through the type's event data class rather than by its keys.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.event_handler import (
    APIGatewayHttpResolver,
    APIGatewayRestResolver,
    LambdaFunctionUrlResolver,
)
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
    LambdaFunctionUrlEvent,
)
from aws_lambda_powertools.utilities.data_classes.common import BaseProxyEvent

from functions.inference.config import FrontDoorType

Resolver = APIGatewayRestResolver | APIGatewayHttpResolver | LambdaFunctionUrlResolver


@dataclass(frozen=True)
class FrontDoor:
    resolver: type[Resolver]
    event: type[BaseProxyEvent]
    correlation_id_path: str


FRONT_DOORS: dict[FrontDoorType, FrontDoor] = {
    "rest": FrontDoor(APIGatewayRestResolver, APIGatewayProxyEvent, correlation_paths.API_GATEWAY_REST),
    "http": FrontDoor(APIGatewayHttpResolver, APIGatewayProxyEventV2, correlation_paths.API_GATEWAY_HTTP),
    "function_url": FrontDoor(LambdaFunctionUrlResolver, LambdaFunctionUrlEvent, correlation_paths.LAMBDA_FUNCTION_URL),
}
