-- Projections for the three selective activity queries (docs/design.md#d16): one actor, one kind
-- in one tenant, one object. Upstream's projections (102) all start with the timestamp like the
-- table's key, so a filter on actor, tenant or object cannot narrow the read; these put the
-- filtered columns first. They name every column: `SELECT *` leaves out the MATERIALIZED columns
-- (all but activity_json and reindex_version), and a projection without the columns a query
-- reads is never used. Each is a full copy of the rows; the insert cost is in docs/benchmarks.md.
-- The query layer reads them only when the WHERE pins the leading columns
-- (processor/query/sql.py PROJECTIONS). The parts stored before this migration are rebuilt by the
-- MATERIALIZE mutations in the background; until then a query reads those parts from the table
-- itself, with equal results.
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_actor_projection
    (
        SELECT activity_json, reindex_version, timestamp, tenant_type, tenant_name, origin_type,
        origin_id, change_source, actor_type, actor_name, actor_uid, api_group, resource_kind,
        resource_name, resource_namespace, resource_uid, activity_name, activity_namespace,
        summary
        ORDER BY (actor_name, timestamp)
    );
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_tenant_kind_projection
    (
        SELECT activity_json, reindex_version, timestamp, tenant_type, tenant_name, origin_type,
        origin_id, change_source, actor_type, actor_name, actor_uid, api_group, resource_kind,
        resource_name, resource_namespace, resource_uid, activity_name, activity_namespace,
        summary
        ORDER BY (tenant_type, tenant_name, resource_kind, timestamp)
    );
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_object_projection
    (
        SELECT activity_json, reindex_version, timestamp, tenant_type, tenant_name, origin_type,
        origin_id, change_source, actor_type, actor_name, actor_uid, api_group, resource_kind,
        resource_name, resource_namespace, resource_uid, activity_name, activity_namespace,
        summary
        ORDER BY (resource_kind, resource_name, timestamp)
    );
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_actor_projection;
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_tenant_kind_projection;
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_object_projection;
