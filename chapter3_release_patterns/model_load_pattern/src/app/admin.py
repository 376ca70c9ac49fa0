"""`POST /admin/reload` (SPEC 2.2 API): reload now instead of at the next poll.

    200 {"changed": bool, "version": "<served version>", "source": {...}}
    404 not_found            the source names nothing (no such alias, version, file)
    422 invalid_input        the body's `source` is no source
    422 verification_failed  a sha256 differs (model DB, metadata.json, MODEL_SHA256)
    422 self_test_failed     the graph does not load or its data sample gives no distribution
    503 dependency_unavailable  the source does not answer (Retry-After)

In every failure case the model served so far keeps serving. With a `source`, the process
follows that source from now on (until the next reload with another one or a restart).
Unauthenticated, like the rest of the API: keep the port inside the cluster.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from src.app.dependencies import RETRY_AFTER_S, reloader
from src.app.reloader import SelfTestFailed
from src.app.routes import source_ref
from src.app.schemas import ReloadRequest, ReloadResponse
from src.common.errors import ApiError, error_responses
from src.loader.fetch import SourceNotFound, SourceUnreachable, VerificationFailed
from src.loader.sources import InvalidSource, parse_source

router = APIRouter(prefix="/admin", tags=["admin"])


@router.post("/reload", responses=error_responses(404, 415, 422, 503))
async def reload(request: Request, body: ReloadRequest | None = None) -> ReloadResponse:
    """Resolve the source (or `source`); swap in the model it names if that is another one."""
    source = body.source if body is not None else None
    if source is not None:
        try:
            parse_source(source)
        except InvalidSource as error:
            details = [{"loc": ["body", "source"], "msg": str(error)}]
            raise ApiError(422, "invalid_input", str(error), details=details) from error
    current = reloader(request)
    try:
        outcome = await current.reload(source)
    except SourceNotFound as error:
        raise ApiError(404, "not_found", str(error)) from error
    except SourceUnreachable as error:
        raise ApiError(
            503,
            "dependency_unavailable",
            f"model source unreachable: {error}",
            headers={"Retry-After": RETRY_AFTER_S},
        ) from error
    except VerificationFailed as error:
        raise ApiError(422, "verification_failed", str(error)) from error
    except SelfTestFailed as error:
        raise ApiError(422, "self_test_failed", str(error)) from error
    return ReloadResponse(
        changed=outcome.changed,
        version=outcome.served.card.version,
        source=source_ref(current.record),
    )
