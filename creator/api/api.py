"""The REST API, /api/v1/: typed schemas, OpenAPI 3.1 at /api/v1/openapi.json, interactive docs
at /api/v1/docs. Every resource is the owner's alone (another creator's object is a 404), every
error is a problem document (config.api), and work is done by the services the pages use."""

from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from config import api as shared
from config.api import ApiError, problem
from config.refusal import Refusal
from creator.api import studio, subjects
from creator.api.auth import TokenAuth
from creator.jobs.runtime import QueueUnavailable
from gallery import api as gallery_api

DESCRIPTION = f"""Everything Candor's pages do, for scripts and tools: subjects and their reference
photos, consent links, training runs, generations, posts and verification.

**Tokens.** Send a personal API token as `Authorization: Bearer <token>`. Make one on your account
page (or `candor api-token create --user HANDLE --name NAME`). Scopes: `read` (see your things),
`write` (change them), `train` (start training and generation: work for the GPU).

**Lists** are newest first, `limit` items (1–100) a page; pass `next_cursor` back as `cursor` for
the next page. **Idempotency:** `POST /models` and `POST /generations` honour an
`Idempotency-Key` header: a retried request gets the first answer and starts nothing new.

**Errors** are RFC 9457 problem documents (`application/problem+json`) with a stable `code`:

{shared.described()}
"""


class CandorAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation) -> str:
        """Operation ids are the view's own name (`subject_create`): generated clients get
        readable function names."""
        return operation.view_func.__name__

    def get_openapi_schema(self, *args, **kwargs):
        """Error responses are problem documents: say so in the schema (its content type)."""
        schema = super().get_openapi_schema(*args, **kwargs)
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if int(status) in shared.ERROR_STATUSES and "application/json" in content:
                        content[shared.PROBLEM_TYPE] = content.pop("application/json")
        return schema


api = CandorAPI(
    title="Candor API",
    version="1",
    description=DESCRIPTION,
    auth=TokenAuth(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", subjects.router)
api.add_router("", studio.router)
api.add_router("", gallery_api.router)
api.add_router("", gallery_api.verify_router)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return problem(exc.code, exc.detail, errors=exc.errors, headers=exc.headers)


@api.exception_handler(QueueUnavailable)
def _queue_down(request, exc: QueueUnavailable):
    return problem("queue_unavailable", exc.message, headers={"Retry-After": "30"})


@api.exception_handler(Refusal)
def _refused(request, exc: Refusal):
    return problem("refused", exc.message)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return problem("unauthenticated", shared.NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})


@api.exception_handler(ValidationError)
def _invalid(request, exc: ValidationError):
    found = [
        {"loc": list(e.get("loc", [])), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
        for e in exc.errors
    ]
    first = found[0] if found else {"loc": [], "msg": "invalid"}
    where = ".".join(str(x) for x in first["loc"][1:]) or "request"
    return problem("invalid_request", f"{where}: {first['msg']}", errors=found)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return problem("not_found", "There is no such object, or it isn't yours.")


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    codes = {
        401: "unauthenticated",
        403: "insufficient_scope",
        404: "not_found",
        413: "payload_too_large",
        429: "rate_limited",
    }
    return problem(codes.get(exc.status_code, "invalid_request"), str(exc))
