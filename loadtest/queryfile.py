"""Locust HTTP user of ``activity serve``: the read API under load, like upstream's k6 query test.

``ApiReader`` users run closed-loop (as k6's virtual users) over the query types of the Activity
API, each a Locust stats entry named by its type, so Locust's report gives p50/p95/p99 per query
type (``loadtest/serve_queries.py`` runs the whole thing and prints them):

| name | request |
|---|---|
| ``AuditLogQuery`` | POST auditlogqueries, one of upstream's k6 filter templates, last 24 h |
| ``AuditLogQuery continue`` | the next page of a 25-row AuditLogQuery (``spec.continue``) |
| ``ActivityQuery`` | POST activityqueries: one kind in one tenant, or one actor, last 24 h |
| ``EventQuery`` | POST eventqueries: a field selector (type, regarding.kind), last 24 h |
| ``activities list`` | GET activities?limit=100 with a ``spec.resource.kind`` field selector |
| ``AuditLogFacetsQuery``, ``ActivityFacetQuery`` | the facet queries (verb, user; actor, kind) |

Run by hand: ``locust -f loadtest/queryfile.py --host http://127.0.0.1:6443
--serve-token-file TOKENS``. The token (first line of the file) is sent as a bearer token.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from locust import FastHttpUser, constant, events, task

GV = "/apis/activity.miloapis.com/v1alpha1"
API_VERSION = "activity.miloapis.com/v1alpha1"

#: upstream's k6 AuditLogQuery templates (test/load/src/query-load-test.js): (filter, limit)
AUDIT_TEMPLATES = [
    ("objectRef.apiGroup == '' && objectRef.resource == 'pods'", 100),
    ("objectRef.apiGroup == 'apps' && objectRef.resource == 'deployments'", 100),
    ("objectRef.apiGroup == 'apps' && objectRef.resource == 'statefulsets'", 100),
    ("objectRef.apiGroup == 'batch' && objectRef.resource == 'jobs'", 100),
    ("objectRef.apiGroup == '' && objectRef.resource == 'services'", 100),
    ("objectRef.apiGroup == '' && objectRef.resource == 'pods' && verb == 'create'", 100),
    (
        "objectRef.apiGroup == 'apps' && objectRef.resource == 'deployments' "
        "&& verb in ['update', 'patch']",
        100,
    ),
    (
        "objectRef.apiGroup == '' && objectRef.resource == 'secrets' && verb in ['get', 'list']",
        100,
    ),
    ("objectRef.apiGroup == 'apps'", 100),
    ("objectRef.apiGroup == 'batch'", 100),
    (
        "objectRef.apiGroup == 'apps' && objectRef.resource == 'deployments' "
        "&& responseStatus.code >= 400",
        50,
    ),
    (
        "objectRef.apiGroup == '' && objectRef.resource == 'pods' && verb in ['create', 'delete']",
        100,
    ),
    ("objectRef.resource == 'configmaps'", 100),
    ("objectRef.resource == 'namespaces'", 100),
]
#: the kinds, tenants and actors of the generated activities (processor.bench.query)
KINDS = ("Pod", "Deployment", "Service", "ConfigMap", "Secret", "StatefulSet", "Job", "Ingress")


@events.init_command_line_parser.add_listener
def _options(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument(
        "--serve-token-file", default="", help="bearer token file of activity serve"
    )


def _window(hours: int = 24) -> dict[str, str]:
    now = datetime.now(UTC)
    start = now - timedelta(hours=hours)
    return {
        "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class ApiReader(FastHttpUser):
    """One reader: a closed loop over the query types (weights: audit-log queries most)."""

    wait_time = constant(0)

    def on_start(self) -> None:
        path = self.environment.parsed_options.serve_token_file
        token = ""
        if path:
            with open(path, encoding="utf-8") as f:
                token = next((ln.strip() for ln in f if ln.strip() and ln[0] != "#"), "")
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def _create(self, plural: str, kind: str, spec: dict[str, Any], name: str) -> dict[str, Any]:
        body = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": "load"}, "spec": spec}
        with self.client.post(
            f"{GV}/{plural}", json=body, headers=self.headers, name=name, catch_response=True
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                return {}
            return resp.json().get("status") or {}

    @task(5)
    def audit_log_query(self) -> None:
        flt, limit = random.choice(AUDIT_TEMPLATES)
        spec = {**_window(), "filter": flt, "limit": limit}
        self._create("auditlogqueries", "AuditLogQuery", spec, "AuditLogQuery")

    @task(1)
    def audit_log_query_pages(self) -> None:
        flt, _ = random.choice(AUDIT_TEMPLATES[:5])
        spec = {**_window(), "filter": flt, "limit": 25}
        status = self._create("auditlogqueries", "AuditLogQuery", spec, "AuditLogQuery")
        if status.get("continue"):
            spec["continue"] = status["continue"]
            self._create("auditlogqueries", "AuditLogQuery", spec, "AuditLogQuery continue")

    @task(3)
    def activity_query(self) -> None:
        if random.random() < 0.5:
            org = f"org-{random.randrange(50)}"
            flt = (
                f"spec.resource.kind == '{random.choice(KINDS)}' && "
                f"spec.tenant.type == 'Organization' && spec.tenant.name == '{org}'"
            )
        else:
            flt = f"spec.actor.name == 'user-{random.randrange(2000)}@example.com'"
        spec = {**_window(), "filter": flt, "limit": 100}
        self._create("activityqueries", "ActivityQuery", spec, "ActivityQuery")

    @task(2)
    def event_query(self) -> None:
        selector = random.choice(
            (
                "type=Warning",
                "regarding.kind=Pod",
                "type=Warning,regarding.kind=Node",
                "reason=BackOff",
            )
        )
        spec = {**_window(), "fieldSelector": selector, "limit": 100}
        self._create("eventqueries", "EventQuery", spec, "EventQuery")

    @task(2)
    def activities_list(self) -> None:
        kind = random.choice(KINDS)
        with self.client.get(
            f"{GV}/activities?limit=100&fieldSelector=spec.resource.kind%3D{kind}",
            headers=self.headers,
            name="activities list",
            catch_response=True,
        ) as resp:
            if resp.status_code != 200:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")

    @task(1)
    def facets(self) -> None:
        window = _window()
        time_range = {"start": window["startTime"], "end": window["endTime"]}
        audit = {"timeRange": time_range, "facets": [{"field": "verb"}, {"field": "user.username"}]}
        self._create("auditlogfacetsqueries", "AuditLogFacetsQuery", audit, "AuditLogFacetsQuery")
        fields = [{"field": "spec.actor.name"}, {"field": "spec.resource.kind"}]
        acts = {"timeRange": time_range, "facets": fields}
        self._create("activityfacetqueries", "ActivityFacetQuery", acts, "ActivityFacetQuery")
