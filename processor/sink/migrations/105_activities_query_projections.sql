-- Projections for the three selective activity queries (docs/design.md#d16): one actor, one kind
-- in one tenant, one object. Upstream's projections (102) all start with the timestamp like the
-- table's key, so a filter on actor, tenant or object cannot narrow the read; these put the
-- filtered columns first. Each is a full copy of the rows (SELECT *), the insert cost is in
-- docs/benchmarks.md. The query layer reads them only when the WHERE pins the leading columns
-- (processor/query/sql.py PROJECTIONS). Existing parts are rebuilt by the MATERIALIZE mutations in
-- the background; until then a query reads those parts from the table itself, with equal results.
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_actor_projection
    (SELECT * ORDER BY (actor_name, timestamp));
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_tenant_kind_projection
    (SELECT * ORDER BY (tenant_type, tenant_name, resource_kind, timestamp));
ALTER TABLE ${DB}.activities
    ADD PROJECTION IF NOT EXISTS activity_object_projection
    (SELECT * ORDER BY (resource_kind, resource_name, timestamp));
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_actor_projection;
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_tenant_kind_projection;
ALTER TABLE ${DB}.activities MATERIALIZE PROJECTION activity_object_projection;
