"""Reading timelines: CEL filters to ClickHouse SQL, keyset pages, facets, history, watch.

Public API:
    QueryRequest, run_query, iter_pages, Page     (processor.query.service)
    compile_filter(source, table) -> Expr          (processor.query.filter)
    facets(backend, request, fields)               (processor.query.facets)
    fetch_changes(...), render(...)                (processor.query.history)
    watch(nats_url, WatchSpec(...))                (processor.query.watch)
    ACTIVITIES, AUDIT_LOGS, K8S_EVENTS             (processor.query.tables)
"""
