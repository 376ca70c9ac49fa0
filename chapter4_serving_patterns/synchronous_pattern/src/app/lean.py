"""LeanRoute: an APIRoute whose endpoint receives the Request and returns the Response itself.

FastAPI's own handler solves dependencies, reads and validates the body and serialises the
return value on every call; an endpoint that does all of that itself (it reads and checks the
body with src.app.inputs and returns a pre-encoded JSON Response) only pays for it. The route
stays an APIRoute, so the OpenAPI document still describes it (responses, request body through
`openapi_extra`). This is FastAPI's documented extension point for custom route classes
(`route_class` / `get_route_handler`). `/health` uses it too, so that the benchmark compares
`/predict` with a constant answer served the same way.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.responses import Response

LeanEndpoint = Callable[[Request], Awaitable[Response]]


class LeanRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        parameters = list(inspect.signature(endpoint).parameters)
        if not inspect.iscoroutinefunction(endpoint) or len(parameters) != 1:
            raise TypeError(f"{path}: a LeanRoute endpoint is `async def f(request) -> Response`")
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint: LeanEndpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request)

        return handle
