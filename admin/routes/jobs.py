"""Staff endpoints over the job queue: list, inspect, retry dead jobs."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel

from admin.api import QueryParam, container_of, endpoint, int_param, json_response, principal_of, query_int
from admin.deps import api_actor
from admin.errors import ApiError, not_found
from core.jobs import queue
from core.jobs.models import JobStatus


class JobOut(BaseModel):
    id: int
    kind: str
    status: str
    attempts: int
    max_attempts: int | None
    run_at: datetime
    last_error: str | None
    idempotency_key: str
    created_at: datetime
    finished_at: datetime | None


class JobAttemptOut(BaseModel):
    attempt: int
    worker: str
    started_at: datetime
    finished_at: datetime
    outcome: str
    error: str | None


class JobDetail(JobOut):
    history: list[JobAttemptOut]


class RetryResult(BaseModel):
    requeued: int


class QueueDepth(BaseModel):
    depth: dict[str, int]


@endpoint(
    summary="Listar trabajos",
    tags=["Trabajos"],
    response=list[JobOut],
    query=[
        QueryParam("status", "queued, running, succeeded o dead"),
        QueryParam("kind", "Tipo de trabajo"),
        QueryParam("limit", "Máximo de filas (1-500)", {"type": "integer"}),
    ],
    errors=[400],
)
async def list_jobs(request: web.Request) -> web.Response:
    status = request.query.get("status") or None
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ApiError(400, "invalid_query", "status debe ser queued, running, succeeded o dead.")
    limit = query_int(request, "limit", 50, maximum=500)
    async with container_of(request).db.session() as session:
        jobs = await queue.list_jobs(session, status=status, kind=request.query.get("kind") or None, limit=limit)
    return json_response([JobOut.model_validate(j, from_attributes=True) for j in jobs])


@endpoint(summary="Profundidad de la cola por estado", tags=["Trabajos"], response=QueueDepth)
async def depth(request: web.Request) -> web.Response:
    async with container_of(request).db.session() as session:
        return json_response(QueueDepth(depth=await queue.queue_depth(session)))


@endpoint(summary="Detalle de un trabajo con sus intentos", tags=["Trabajos"], response=JobDetail, errors=[404])
async def show_job(request: web.Request) -> web.Response:
    job_id = int_param(request, "job_id")
    async with container_of(request).db.session() as session:
        job = await queue.get_job(session, job_id)
        if job is None:
            raise not_found("trabajo")
        attempts = await queue.attempts_of(session, job_id)
    detail = JobDetail(
        **JobOut.model_validate(job, from_attributes=True).model_dump(),
        history=[JobAttemptOut.model_validate(a, from_attributes=True) for a in attempts],
    )
    return json_response(detail)


@endpoint(summary="Reintentar un trabajo muerto", tags=["Trabajos"], response=RetryResult, errors=[404, 409])
async def retry_job(request: web.Request) -> web.Response:
    job_id = int_param(request, "job_id")
    container = container_of(request)
    async with container.db.transaction() as session:
        job = await queue.get_job(session, job_id)
        if job is None:
            raise not_found("trabajo")
        if job.status != JobStatus.DEAD:
            raise ApiError(409, "not_dead", f"Solo se reintentan trabajos en estado dead; este está en {job.status}.")
        count = await queue.retry_dead_as(
            session, actor=api_actor(principal_of(request)), now=container.clock.now(), job_id=job_id
        )
    return json_response(RetryResult(requeued=count))


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/jobs", list_jobs)
    app.router.add_get("/api/v1/jobs/depth", depth)
    app.router.add_get("/api/v1/jobs/{job_id}", show_job)
    app.router.add_post("/api/v1/jobs/{job_id}/retry", retry_job)
