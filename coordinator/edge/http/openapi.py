"""The OpenAPI 3 document of /api/v1: every path, parameter and response schema."""

from __future__ import annotations

from typing import Any

from conveyor.states import BuildStatus

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str) -> Schema:
    return {"type": [kind, "null"]}


def _object(properties: dict[str, Schema], required: bool = True) -> Schema:
    """An object schema; each `NAME_ms` time is followed by `NAME`, the same time in ISO 8601
    (UTC), as every document carries it (conveyor.times)."""
    with_times: dict[str, Schema] = {}
    for name, schema in properties.items():
        with_times[name] = schema
        if name.endswith("_ms"):
            nullable = "null" in schema.get("type", [])
            kind = ["string", "null"] if nullable else "string"
            with_times[name.removesuffix("_ms")] = {"type": kind, "format": "date-time"}
    schema = {"type": "object", "properties": with_times}
    if required:
        schema["required"] = list(with_times)
    return schema


_INT = {"type": "integer"}
_STR = {"type": "string"}
_NUM = _nullable("number")

_SCHEMAS: dict[str, Schema] = {
    "Error": _object({"error": _STR}),
    "Whoami": _object({"name": _STR, "role": _STR}),
    "Step": _object(
        {
            "name": _STR,
            "status": _STR,
            "exit_code": _nullable("integer"),
            "started_at_ms": _nullable("integer"),
            "finished_at_ms": _nullable("integer"),
            "log_bytes": _INT,
            "log_lost_bytes": _INT,
        }
    ),
    "Job": _object(
        {
            "name": _STR,
            "status": _STR,
            "needs": {"type": "array", "items": _STR},
            "attempts": _INT,
            "exit_code": _nullable("integer"),
            "reason": _nullable("string"),
            "message": _nullable("string"),
            "agent": _nullable("string"),
            "steps": {"type": "array", "items": _ref("Step")},
        }
    ),
    "BuildSummary": _object(
        {
            "id": _INT,
            "name": _STR,
            "status": _STR,
            "created_at_ms": _INT,
            "finished_at_ms": _nullable("integer"),
            "event": _nullable("string"),
            "branch": _nullable("string"),
            "tag": _nullable("string"),
            "redeploys": _nullable("integer"),
            "trigger": {"oneOf": [_ref("Trigger"), {"type": "null"}]},
            "error": _nullable("string"),
        }
    ),
    "Trigger": _object(
        {
            "event": _STR,
            "repo": _STR,
            "branch": _nullable("string"),
            "tag": _nullable("string"),
            "commit": _STR,
            "committed_at_ms": _nullable("integer"),
            "message": _STR,
            "author": _STR,
        }
    ),
    "Agent": _object(
        {
            "id": _INT,
            "name": _STR,
            "labels": {"type": "object", "additionalProperties": _STR},
            "capacity": _INT,
            "running": _INT,
            "state": _STR,
            "last_seen_ms": _nullable("integer"),
        }
    ),
    "Deployment": _object(
        {
            "id": _INT,
            "environment": _STR,
            "build": _INT,
            "job": _STR,
            "status": _STR,
            "commit": _nullable("string"),
            "artifacts": {"type": "array", "items": {"type": "object"}},
            "approvals": {"type": "array", "items": {"type": "object"}},
            "redeploys": _nullable("integer"),
            "actor": _STR,
            "started_at_ms": _INT,
            "finished_at_ms": _INT,
            "committed_at_ms": _nullable("integer"),
        }
    ),
    "Decision": _object(
        {
            "build": _INT,
            "job": _STR,
            "prompt": _STR,
            "decision": _nullable("string"),
            "by": _nullable("string"),
            "at_ms": _nullable("integer"),
            "comment": _nullable("string"),
        }
    ),
    "Dora": _object(
        {
            "environment": _nullable("string"),
            "since_ms": _INT,
            "deployments": _INT,
            "deployment_frequency_per_day": _NUM,
            "lead_time_s": _object({"median": _NUM, "p90": _NUM}),
            "change_failure_rate": _NUM,
            "time_to_restore_s": _object({"median": _NUM}),
        }
    ),
}
_SCHEMAS["Build"] = {
    **_SCHEMAS["BuildSummary"],
    "properties": {
        **_SCHEMAS["BuildSummary"]["properties"],
        "jobs": {"type": "array", "items": _ref("Job")},
    },
    "required": [*_SCHEMAS["BuildSummary"]["required"], "jobs"],
}
_SCHEMAS["Job"]["properties"]["approval"] = {"type": "object"}  # gates only
_SCHEMAS["Environment"] = _object(
    {
        "name": _STR,
        "url": _nullable("string"),
        "current": {"oneOf": [_ref("Deployment"), {"type": "null"}]},
    }
)

_ERRORS = (400, 401, 403, 404, 409, 413, 416, 429, 503)


def _json(schema: Schema, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _responses(ok: Schema, status: int = 200) -> Schema:
    answers: Schema = {str(status): ok}
    for code in _ERRORS:
        answers[str(code)] = _json(_ref("Error"), "An error, in words")
    return answers


def _param(
    name: str, where: str, schema: Schema, required: bool = False, description: str = ""
) -> Schema:
    param = {"name": name, "in": where, "required": required or where == "path", "schema": schema}
    if description:
        param["description"] = description
    return param


def _op(
    summary: str,
    ok: Schema,
    params: tuple[Schema, ...] = (),
    body: Schema | None = None,
    status: int = 200,
) -> Schema:
    operation: Schema = {
        "summary": summary,
        "parameters": list(params),
        "responses": _responses(ok, status),
        "security": [{"bearer": []}],
    }
    if body is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    return operation


_BUILD = _param("build", "path", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1})
_JOB = _param("job", "path", _STR)
_STEP = _param("step", "path", {"type": "integer", "minimum": 0})
_ENV = _param("env", "path", _STR)
_ATTEMPT = _param("attempt", "query", {"type": "integer", "minimum": 0})
_LIMIT = _param("limit", "query", {"type": "integer", "minimum": 0})
_OFFSET = _param("offset", "query", {"type": "integer", "minimum": 0})
_OK_BUILD = _json(_ref("Build"))
_COMMENT = _object({"comment": _STR}, required=False)
_BYTES = {
    "description": "The log bytes asked for; X-Log-Length is the log's length so far",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
_EVENTS = {
    "description": "Server-Sent Events",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
_SUBMIT = _object(
    {
        "pipeline": _STR,
        "source_name": _STR,
        "env": {"type": "object", "additionalProperties": _STR},
        "source": _object(
            {"snapshot_sha256": _STR, "git_url": _STR, "git_ref": _STR}, required=False
        ),
        "branch": _STR,
        "tag": _STR,
    },
    required=False,
)


def _build_paths() -> dict[str, Schema]:
    builds_list = _json({"type": "array", "items": _ref("BuildSummary")})
    states = {"type": "string", "enum": [s.value for s in BuildStatus]}
    status = _param(
        "status",
        "query",
        {"type": "array", "items": states},
        description="Only builds in these states: repeated, or a comma list",
    )
    name = _param("name", "query", _STR, description="Only this pipeline's builds")
    branch = _param("branch", "query", _STR, description="Only builds of this branch")
    log = "/builds/{build}/jobs/{job}/steps/{step}/log"
    return {
        "/builds": {
            "get": _op("Builds, newest first", builds_list, (status, name, branch, _LIMIT)),
            "post": _op("Submit a pipeline", _json(_object({"id": _INT})), (), _SUBMIT, 201),
        },
        "/builds/{build}": {"get": _op("A build", _OK_BUILD, (_BUILD,))},
        "/builds/{build}/cancel": {"post": _op("Cancel a build", _OK_BUILD, (_BUILD,))},
        "/builds/{build}/retry": {
            "post": _op("Retry a build's job", _OK_BUILD, (_BUILD,), _object({"job": _STR}, False))
        },
        "/builds/{build}/events": {"get": _op("A build's changes, live", _EVENTS, (_BUILD,))},
        "/builds/{build}/jobs": {
            "get": _op("A build's jobs", _json({"type": "array", "items": _ref("Job")}), (_BUILD,))
        },
        "/builds/{build}/jobs/{job}": {"get": _op("A job", _json(_ref("Job")), (_BUILD, _JOB))},
        "/builds/{build}/jobs/{job}/approve": {
            "post": _op("Approve a gate", _json(_ref("Decision")), (_BUILD, _JOB), _COMMENT)
        },
        "/builds/{build}/jobs/{job}/reject": {
            "post": _op("Reject a gate", _json(_ref("Decision")), (_BUILD, _JOB), _COMMENT)
        },
        log: {
            "get": _op(
                "A byte range of a step's log (Range: bytes=A-B, or offset and limit)",
                _BYTES,
                (_BUILD, _JOB, _STEP, _ATTEMPT, _OFFSET, _LIMIT),
            )
        },
        log + "/live": {
            "get": _op(
                "A step's log, live, from an offset (Last-Event-ID or offset)",
                _EVENTS,
                (_BUILD, _JOB, _STEP, _ATTEMPT, _OFFSET),
            )
        },
    }


def _delivery_paths() -> dict[str, Schema]:
    agents = {
        f"/agents/{{name}}/{verb}": {
            "post": _op(f"{verb} an agent", _json(_ref("Agent")), (_param("name", "path", _STR),))
        }
        for verb in ("pause", "resume", "drain")
    }
    return {
        "/whoami": {"get": _op("The caller's token: its name and role", _json(_ref("Whoami")))},
        "/agents": {"get": _op("Agents", _json({"type": "array", "items": _ref("Agent")}))},
        **agents,
        "/environments": {
            "get": _op(
                "Environments",
                _json(_object({"environments": {"type": "array", "items": _ref("Environment")}})),
            )
        },
        "/environments/{env}/deployments": {
            "get": _op(
                "An environment's deployments, newest first",
                _json(
                    _object(
                        {
                            "environment": _STR,
                            "deployments": {"type": "array", "items": _ref("Deployment")},
                        }
                    )
                ),
                (_ENV, _LIMIT),
            )
        },
        "/environments/{env}/rollback": {
            "post": _op(
                "Roll an environment back",
                _json(_object({"id": _INT, "redeploys": _INT})),
                (_ENV,),
                _object({"to": _INT}, required=False),
                201,
            )
        },
        "/dora": {
            "get": _op(
                "Delivery figures",
                _json(_ref("Dora")),
                (
                    _param("env", "query", _STR),
                    _param("since_ms", "query", {"type": "integer", "minimum": 0}),
                ),
            )
        },
    }


def _hook_paths() -> dict[str, Schema]:
    """Forges' push webhooks: outside /api/v1, and the signature is the credential."""
    signed = [
        _param(header, "header", _STR)
        for header in ("X-Hub-Signature-256", "X-Gitea-Signature", "X-Gitlab-Token")
    ]
    events = [
        _param(header, "header", _STR)
        for header in ("X-GitHub-Event", "X-Gitea-Event", "X-Gitlab-Event")
    ]
    answers = {
        "202": _json(_object({"repo": _STR, "result": {"enum": ["checking", "ignored"]}})),
        **{
            str(code): _json(_ref("Error"), words)
            for code, words in (
                (401, "The signature is missing or does not match"),
                (404, "No such repository"),
                (413, "The body is too large"),
            )
        },
    }
    push = {
        "summary": "A push webhook (GitHub, Gitea or GitLab): checks the repository at once; "
        "other events (ping) are answered and ignored",
        "servers": [{"url": "/"}],
        "parameters": [_param("name", "path", _STR), *signed, *events],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
        "responses": answers,
        "security": [],
    }
    return {"/hooks/git/{name}": {"post": push}}


def openapi_document() -> Schema:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": {**_build_paths(), **_delivery_paths(), **_hook_paths()},
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
