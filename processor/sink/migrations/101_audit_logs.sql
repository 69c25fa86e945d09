-- Raw Kubernetes audit events (upstream final layout of audit.audit_logs, migration 001 + 003).
-- Writers insert only event_json; every other column is MATERIALIZED from it.
CREATE TABLE IF NOT EXISTS ${DB}.audit_logs
(
    event_json String CODEC(ZSTD(3)),
    timestamp DateTime64(3) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'requestReceivedTimestamp')),
        now64(3)),
    scope_type LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'annotations', 'platform.miloapis.com/scope.type'),
    scope_name String MATERIALIZED
        JSONExtractString(event_json, 'annotations', 'platform.miloapis.com/scope.name'),
    user String MATERIALIZED JSONExtractString(event_json, 'user', 'username'),
    user_uid String MATERIALIZED JSONExtractString(event_json, 'user', 'uid'),
    audit_id UUID MATERIALIZED toUUIDOrZero(JSONExtractString(event_json, 'auditID')),
    verb LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'verb'),
    api_group LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'objectRef', 'apiGroup'),
    resource LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'objectRef', 'resource'),
    namespace LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'objectRef', 'namespace'),
    resource_name String MATERIALIZED JSONExtractString(event_json, 'objectRef', 'name'),
    status_code UInt16 MATERIALIZED
        toUInt16OrZero(JSONExtractString(event_json, 'responseStatus', 'code')),

    INDEX idx_timestamp_minmax timestamp TYPE minmax GRANULARITY 4,
    INDEX idx_verb_set verb TYPE set(10) GRANULARITY 4,
    INDEX idx_resource_bloom resource TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX bf_api_resource (api_group, resource) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_verb_resource_bloom (verb, resource) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_user_bloom user TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_uid_bloom user_uid TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_status_code_set status_code TYPE set(100) GRANULARITY 4,
    INDEX idx_status_code_minmax status_code TYPE minmax GRANULARITY 4,

    PROJECTION platform_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, api_group, resource, audit_id)
    ),
    PROJECTION user_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, user, api_group, resource, audit_id)
    ),
    PROJECTION user_uid_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, user_uid, api_group, resource, audit_id)
    )
)
ENGINE = ${REPLACING}()
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), timestamp, scope_type, scope_name, user, audit_id)
--@tiered TTL timestamp + INTERVAL 90 DAY TO VOLUME 'cold'
SETTINGS
    ttl_only_drop_parts = 1,
    deduplicate_merge_projection_mode = 'rebuild',
--@tiered storage_policy = '${STORAGE_POLICY}',
    non_replicated_deduplication_window = ${DEDUP_WINDOW};
