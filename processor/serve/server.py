"""The ``activity serve`` application (aiohttp): routes, authentication, lifecycle.

Routes (every one but the probes and the discovery documents needs an authenticated caller,
:mod:`processor.serve.identity`):

- discovery: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``,
  ``/openapi/v3[/apis/activity.miloapis.com/v1alpha1]``;
- ``POST /apis/activity.miloapis.com/v1alpha1/<query resource>`` (:mod:`processor.serve.queries`);
- Activities: ``GET .../v1alpha1[/namespaces/<ns>]/activities[/<name>]`` and ``?watch=true``;
- Events: ``GET /api/v1[/namespaces/<ns>]/events[/<name>]`` and the same under
  ``/apis/events.k8s.io/v1``, with ``?watch=true``;
- ``/healthz``, ``/livez``, ``/readyz`` (no authentication), also on ``--health-addr``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

import processor
from processor.httpserve import Listeners, peercert, tls_server_context, wait_for_signal
from processor.query.tables import K8S_EVENTS, Table
from processor.query.timeparse import duration_ns
from processor.query.tokenkeys import TokenKeys, load_keys
from processor.serve import discovery, lists, table, watching
from processor.serve.convert import CORE_V1, EVENTS_V1, core_selector, to_core_v1, to_events_v1
from processor.serve.identity import Caller, Forbidden, IdentityResolver, Unauthenticated
from processor.serve.queries import QUERY_RESOURCES, Context
from processor.serve.settings import ServeSettings
from processor.serve.status import API_VERSION, ApiError
from processor.serve.store import Store

log = logging.getLogger(__name__)

__all__ = ["ApiServer"]

GV = f"/apis/{discovery.GROUP}/{discovery.VERSION}"
_CALLER = web.RequestKey("caller", Caller)
#: answered without authentication: probes and discovery documents, which hold no records
#: (kube-apiserver's availability check of the APIService reads discovery without a user)
_PUBLIC = re.compile(r"/(healthz|livez|readyz|version|api|api/v1|apis(/[^/]+){0,2}|openapi/.*)")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _peer(request: web.Request) -> Any:
    transport = request.transport
    return transport.get_extra_info("peername") if transport is not None else None


class ApiServer:
    """The Activity API server.

    Args:
        settings: the validated settings.
        sink: an open sink to read (the demo's); default: opened from ``clickhouse_url``.
        keys: continue-token keys (default: from ``token_key_file`` / the environment).
    """

    def __init__(
        self, settings: ServeSettings, sink: Any = None, keys: TokenKeys | None = None
    ) -> None:
        self.settings = settings
        self.identity = IdentityResolver(settings)
        self.ssl = (
            tls_server_context(
                settings.tls_cert_file,
                settings.tls_private_key_file,
                settings.requestheader_client_ca_file,
            )
            if settings.tls
            else None
        )
        url = settings.clickhouse_url
        if sink is None and not url:
            from processor.sink.factory import default_clickhouse_url

            url = default_clickhouse_url()
        self.store = Store(url, sink=sink, workers=settings.workers)
        self.ctx = Context(
            self.store,
            keys or load_keys(settings.token_key_file or None),
            duration_ns(settings.max_query_window),
        )
        self.list_window = duration_ns(settings.list_window)
        self.events_window = duration_ns(settings.events_list_window)
        self._listeners = Listeners()
        self.port = 0
        self.health_port = 0
        self.started = False
        self._stopping = asyncio.Event()  # ends the watches when the server stops

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store (a missing store fails here) and listen."""
        if self.identity.open:
            log.warning(
                "activity serve: NO AUTHENTICATION: neither --token-file nor "
                "--requestheader-client-ca-file is set, so every caller has the platform scope "
                "and reads every tenant's records"
            )
        await asyncio.get_running_loop().run_in_executor(None, self.store.open)
        s = self.settings
        self.port = await self._listeners.listen(self.app(), s.listen_addr, self.ssl)
        if s.health_addr:
            health = web.Application()
            self._add_probes(health)
            self.health_port = await self._listeners.listen(health, s.health_addr, None)
        self.started = True
        log.info(
            "activity-serve %s on %s://%s (port %d)",
            processor.__version__,
            "https" if self.ssl else "http",
            s.listen_addr,
            self.port,
        )

    async def stop(self) -> None:
        """Stop listening; watches end within a couple of seconds, other requests finish."""
        self.started = False
        self._stopping.set()
        await self._listeners.close()
        await asyncio.get_running_loop().run_in_executor(None, self.store.close)

    async def serve(self) -> None:
        """Run until SIGTERM or SIGINT."""
        await self.start()
        try:
            await wait_for_signal()
        finally:
            await self.stop()

    # -- application ----------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=4 << 20)
        r = app.router
        self._add_probes(app)
        r.add_get("/version", self._static(discovery.version_info))
        r.add_get("/api", self._static(discovery.api_versions))
        r.add_get("/api/v1", self._static(discovery.core_resources))
        r.add_get("/apis", self._static(discovery.api_group_list))
        r.add_get("/apis/{group}", self._group)
        r.add_get("/apis/{group}/{version}", self._group_version)
        r.add_get("/openapi/v2", self._openapi_v2)
        r.add_get("/openapi/v3", self._static(discovery.openapi_root))
        r.add_get(f"/openapi/v3{GV}", self._static(discovery.openapi_group))
        # Activities
        r.add_get(f"{GV}/activities", self._activities)
        r.add_get(f"{GV}/namespaces/{{namespace}}/activities", self._activities)
        r.add_get(f"{GV}/activities/{{name}}", self._activity)
        r.add_get(f"{GV}/namespaces/{{namespace}}/activities/{{name}}", self._activity)
        # Events, both versions
        for prefix in ("/api/v1", f"/apis/{discovery.EVENTS_GROUP}/v1"):
            r.add_get(f"{prefix}/events", self._events)
            r.add_get(f"{prefix}/namespaces/{{namespace}}/events", self._events)
            r.add_get(f"{prefix}/namespaces/{{namespace}}/events/{{name}}", self._event)
        # the query resources (create only)
        r.add_route("*", f"{GV}/{{plural}}", self._create)
        r.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _add_probes(self, app: web.Application) -> None:
        for path in ("/healthz", "/livez", "/readyz"):
            app.router.add_get(path, self._probe)

    async def _probe(self, request: web.Request) -> web.Response:
        if request.path == "/readyz" and not self.started:
            return web.Response(status=500, text="[-]started failed: starting or stopping\n")
        return web.Response(text="ok\n")

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if not _PUBLIC.fullmatch(request.path):
                request[_CALLER] = self._authenticate(request)
            return await handler(request)
        except ApiError as exc:
            return _json(exc.status(), exc.code)
        except web.HTTPException as exc:
            if exc.status == 405:
                err = ApiError(405, f"the server does not allow this method ({request.method})")
                return _json(err.status(), 405)
            raise
        except Exception:
            log.exception("activity serve: %s %s failed", request.method, request.path)
            return _json(ApiError(500, "internal error (see the server log)").status(), 500)

    def _authenticate(self, request: web.Request) -> Caller:
        try:
            return self.identity.resolve(request.headers, peercert(request), _peer(request))
        except Unauthenticated:
            raise ApiError(401, "Unauthorized") from None
        except Forbidden:
            raise ApiError(
                403,
                "forbidden: the client certificate is not one of --requestheader-allowed-names",
            ) from None

    @staticmethod
    def _static(make: Callable[[], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _json(make())

        return handler

    async def _openapi_v2(self, request: web.Request) -> web.Response:
        protobuf = "protobuf" in request.headers.get("Accept", "")
        body = discovery.openapi_v2(protobuf)
        kind = discovery.OPENAPI_V2_PROTOBUF if protobuf else "application/json"
        return web.Response(body=body, headers={"Content-Type": kind})

    async def _not_found(self, request: web.Request) -> web.Response:
        raise ApiError(404, f"the server could not find the requested resource ({request.path})")

    async def _group(self, request: web.Request) -> web.Response:
        name = request.match_info["group"]
        if name not in discovery.GROUPS:
            await self._not_found(request)
        return _json(discovery.api_group(name))

    async def _group_version(self, request: web.Request) -> web.Response:
        doc = discovery.group_resources(request.match_info["group"], request.match_info["version"])
        if doc is None:
            await self._not_found(request)
        return _json(doc)

    # -- query resources ------------------------------------------------------------------------
    async def _create(self, request: web.Request) -> web.Response:
        plural = request.match_info["plural"]
        resource = QUERY_RESOURCES.get(plural)
        if resource is None:
            await self._not_found(request)
        assert resource is not None
        if request.method != "POST":
            raise ApiError(
                405, f"{plural}.{discovery.GROUP} can only be created (POST): nothing is stored"
            )
        obj = await _body(request, resource.kind)
        obj["metadata"] = _metadata(obj)  # named first: errors name it too
        caller: Caller = request[_CALLER]
        status = await resource.handler(obj, caller, self.ctx)
        out = dict(obj)
        out["apiVersion"], out["kind"] = API_VERSION, resource.kind
        out["status"] = status
        return _json(out, 201)

    # -- Activities -----------------------------------------------------------------------------
    async def _activities(self, request: web.Request) -> web.StreamResponse:
        selector, token = lists.query_params(request.query)
        return await self._collection(
            request, _ACTIVITIES, selector, token, API_VERSION, _same, self.list_window
        )

    async def _activity(self, request: web.Request) -> web.Response:
        caller: Caller = request[_CALLER]
        obj = await lists.get_one(
            lists.ACTIVITIES_SELECTABLE,
            request.match_info.get("namespace", ""),
            request.match_info["name"],
            caller,
            self.ctx,
            "activities",
            discovery.GROUP,
        )
        if table.wants_table(request.headers.get("Accept", "")):
            return _json(table.to_table(table.ACTIVITY_COLUMNS, [obj], API_VERSION))
        return _json(obj)

    # -- Events ---------------------------------------------------------------------------------
    def _event_version(self, request: web.Request) -> tuple[str, Callable[[Any], dict[str, Any]]]:
        if request.path.startswith("/api/v1"):
            return CORE_V1, to_core_v1
        return EVENTS_V1, to_events_v1

    async def _events(self, request: web.Request) -> web.StreamResponse:
        version, convert = self._event_version(request)
        selector, token = lists.query_params(request.query)
        if version == CORE_V1:
            selector = core_selector(selector)
        return await self._collection(
            request, _EVENTS, selector, token, version, convert, self.events_window
        )

    # -- collections ----------------------------------------------------------------------------
    async def _collection(
        self,
        request: web.Request,
        of: _Collection,
        selector: str,
        token: str,
        version: str,
        convert: Callable[[dict[str, Any]], dict[str, Any]],
        window_ns: int,
    ) -> web.StreamResponse:
        """A list (a ``<Kind>List`` or Table) or, with ``?watch=true``, a watch of ``of``."""
        caller: Caller = request[_CALLER]
        namespace = request.match_info.get("namespace", "")
        as_table = table.wants_table(request.headers.get("Accept", ""))
        if _is_watch(request):
            req = watching.WatchRequest(
                of.source,
                lists.check_name(namespace, "namespace") if namespace else "",
                selector,
                caller.scope,
                watching.parse_since(request.query.get("resourceVersion")),
                watching.parse_timeout(request.query.get("timeoutSeconds")),
            )

            def render(obj: dict[str, Any], first: bool) -> dict[str, Any]:
                if as_table:
                    return table.to_table(of.columns, [obj], version, headers=first)
                return convert(obj)

            return await watching.serve_watch(
                request, self.settings.nats_url, req, of.source, render, self._stopping
            )
        listing = lists.Listing(
            of.source,
            namespace,
            selector,
            lists.parse_limit(request.query.get("limit"), of.default_limit),
            token,
            window_ns,
        )
        page = await lists.fetch(lists.listing_request(listing, caller, self.ctx), self.ctx)
        items = [convert(e) for e in page.items]
        return _page(of.columns, of.list_kind, version, items, page.continue_token, as_table)

    async def _event(self, request: web.Request) -> web.Response:
        caller: Caller = request[_CALLER]
        version, convert = self._event_version(request)
        group = "" if version == CORE_V1 else discovery.EVENTS_GROUP
        obj = await lists.get_one(
            K8S_EVENTS,
            request.match_info["namespace"],
            request.match_info["name"],
            caller,
            self.ctx,
            "events",
            group,
        )
        if table.wants_table(request.headers.get("Accept", "")):
            return _json(table.to_table(table.EVENT_COLUMNS, [obj], version))
        return _json(convert(obj))


@dataclass(frozen=True)
class _Collection:
    """A listable, watchable resource: store table, Table columns, list kind, default limit."""

    source: Table
    columns: list[table.ColumnSpec]
    list_kind: str
    default_limit: int


_ACTIVITIES = _Collection(lists.ACTIVITIES_SELECTABLE, table.ACTIVITY_COLUMNS, "ActivityList", 100)
_EVENTS = _Collection(K8S_EVENTS, table.EVENT_COLUMNS, "EventList", lists.DEFAULT_EVENT_LIMIT)


def _same(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _page(
    columns: list[table.ColumnSpec],
    kind: str,
    version: str,
    items: list[dict[str, Any]],
    token: str,
    as_table: bool,
) -> web.Response:
    """A list answer: a Table or a ``<Kind>List``, with the continue token."""
    doc = lists.list_object(kind, version, items, token)
    if as_table:
        return _json(table.to_table(columns, items, version, list_meta=doc["metadata"]))
    return _json(doc)


def _is_watch(request: web.Request) -> bool:
    return request.query.get("watch", "").lower() in ("true", "1")


async def _body(request: web.Request, kind: str) -> dict[str, Any]:
    raw = await request.read()
    try:
        obj = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ApiError(400, f"the request body must be a {kind} object")
    if obj.get("kind") not in (None, kind):
        raise ApiError(400, f"the request body is a {obj.get('kind')!r}, expected {kind}")
    return obj


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    """The echoed metadata: ``generateName`` gets a suffix, as kube-apiserver names objects."""
    import secrets

    meta = obj.get("metadata")
    meta = dict(meta) if isinstance(meta, dict) else {}
    if not meta.get("name") and meta.get("generateName"):
        alphabet = "bcdfghjklmnpqrstvwxz2456789"
        meta["name"] = str(meta["generateName"]) + "".join(
            secrets.choice(alphabet) for _ in range(5)
        )
    return meta
