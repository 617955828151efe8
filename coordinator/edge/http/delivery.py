"""/api/v1 agents, approval gates, environments, deployments, rollback and the delivery figures."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from conveyor.documents import (
    agent_doc,
    decision_doc,
    deployments_doc,
    environments_doc,
    figures_doc,
)
from conveyor.v1 import control_pb2
from coordinator.config import DEFAULT_FIGURES_WINDOW_S
from coordinator.domain.access import DEPLOY, MANAGE, READ
from coordinator.domain.coordinator import Coordinator
from coordinator.edge.convert import agent_to_pb, build_to_pb
from coordinator.edge.delivery_convert import deployment_to_pb, environment_to_pb, figures_to_pb
from coordinator.edge.http.auth import authorize
from coordinator.edge.http.errors import Endpoint, api, int_param, json_body, path_int, text_field

# The URL verb for each agent mode an operator sets (as the CLI's pause, resume and drain).
_MODES = {"pause": "paused", "resume": "active", "drain": "draining"}


class DeliveryRoutes:
    def __init__(self, core: Coordinator) -> None:
        self._access = core.access
        self._agents = core.agents
        self._gates = core.gates
        self._deployments = core.deployments
        self._rollbacks = core.rollbacks

    def routes(self) -> list[BaseRoute]:
        gate = "/builds/{build:int}/jobs/{job}"
        return [
            Route("/agents", api(self.agents), methods=["GET"]),
            *(
                Route(f"/agents/{{name}}/{verb}", api(self._set_mode(mode)), methods=["POST"])
                for verb, mode in _MODES.items()
            ),
            Route(f"{gate}/approve", api(self.approve), methods=["POST"]),
            Route(f"{gate}/reject", api(self.reject), methods=["POST"]),
            Route("/environments", api(self.environments), methods=["GET"]),
            Route("/environments/{env}/deployments", api(self.deployments), methods=["GET"]),
            Route("/environments/{env}/rollback", api(self.rollback), methods=["POST"]),
            Route("/dora", api(self.dora), methods=["GET"]),
        ]

    async def agents(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "list agents")
        return JSONResponse([agent_doc(agent_to_pb(a)) for a in await self._agents.list()])

    def _set_mode(self, mode: str) -> Endpoint:
        async def set_mode(request: Request) -> Response:
            name = request.path_params["name"]
            by = await authorize(self._access, request, MANAGE, f"{mode} agent {name!r}")
            agent = await self._agents.set_mode(name, mode, by)
            return JSONResponse(agent_doc(agent_to_pb(agent)))

        return set_mode

    async def approve(self, request: Request) -> Response:
        return await self._decide(request, approve=True)

    async def reject(self, request: Request) -> Response:
        return await self._decide(request, approve=False)

    async def _decide(self, request: Request, *, approve: bool) -> Response:
        # The gate's own `roles` decide who may (checked with the decision), as over gRPC.
        principal = await authorize(self._access, request, READ, "decide approval gates")
        comment = text_field(await json_body(request), "comment")
        job = request.path_params["job"]
        build = await self._gates.decide(
            path_int(request, "build"), job, approve=approve, comment=comment, principal=principal
        )
        return JSONResponse(decision_doc(build_to_pb(build), job))

    async def environments(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "list environments")
        found = await self._deployments.environments()
        return JSONResponse(environments_doc([environment_to_pb(e) for e in found]))

    async def deployments(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "list deployments")
        environment = request.path_params["env"]
        found = await self._deployments.of(environment, int_param(request, "limit", 0))
        reply = control_pb2.ListDeploymentsResponse(
            environment=environment, deployments=[deployment_to_pb(d) for d in found]
        )
        return JSONResponse(deployments_doc(reply))

    async def rollback(self, request: Request) -> Response:
        """Starts the rollback build; `{"id", "redeploys"}` (follow it as any build)."""
        environment = request.path_params["env"]
        principal = await authorize(self._access, request, DEPLOY, f"roll back {environment}")
        body = await json_body(request)
        to = body.get("to")
        if to is not None and (not isinstance(to, int) or isinstance(to, bool)):
            raise ValueError("to: must be a deployment id (an integer)")
        started = await self._rollbacks.start(environment, to, principal)
        return JSONResponse({"id": started.build_id, "redeploys": started.redeploys}, 201)

    async def dora(self, request: Request) -> Response:
        await authorize(self._access, request, READ, "read delivery figures")
        now_ms = int(time.time() * 1000)
        default_since = max(0, now_ms - int(DEFAULT_FIGURES_WINDOW_S * 1000))
        since_ms = int_param(request, "since_ms", default_since)
        environment = request.query_params.get("env") or None
        figures = await self._deployments.figures(environment, since_ms)
        return JSONResponse(figures_doc(figures_to_pb(figures)))
