-- Translated activities (upstream final layout of audit.activities, migration 007).
-- Writers insert only activity_json; reindex_version defaults to the insert time and makes the
-- newest copy of a key win when ReplacingMergeTree collapses duplicates (merge or FINAL).
CREATE TABLE IF NOT EXISTS ${DB}.activities
(
    activity_json String CODEC(ZSTD(3)),
    reindex_version DateTime64(3) DEFAULT now64(3),
    timestamp DateTime64(3) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(
            JSONExtractString(activity_json, 'metadata', 'creationTimestamp')),
        now64(3)),
    tenant_type LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'tenant', 'type'),
    tenant_name String MATERIALIZED JSONExtractString(activity_json, 'spec', 'tenant', 'name'),
    origin_type LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'origin', 'type'),
    origin_id String MATERIALIZED JSONExtractString(activity_json, 'spec', 'origin', 'id'),
    change_source LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'changeSource'),
    actor_type LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'actor', 'type'),
    actor_name String MATERIALIZED JSONExtractString(activity_json, 'spec', 'actor', 'name'),
    actor_uid String MATERIALIZED JSONExtractString(activity_json, 'spec', 'actor', 'uid'),
    api_group LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'resource', 'apiGroup'),
    resource_kind LowCardinality(String) MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'resource', 'kind'),
    resource_name String MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'resource', 'name'),
    resource_namespace String MATERIALIZED
        JSONExtractString(activity_json, 'spec', 'resource', 'namespace'),
    resource_uid String MATERIALIZED JSONExtractString(activity_json, 'spec', 'resource', 'uid'),
    activity_name String MATERIALIZED JSONExtractString(activity_json, 'metadata', 'name'),
    activity_namespace String MATERIALIZED
        JSONExtractString(activity_json, 'metadata', 'namespace'),
    summary String MATERIALIZED JSONExtractString(activity_json, 'spec', 'summary'),

    INDEX idx_api_group api_group TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_actor_name actor_name TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_actor_uid actor_uid TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_resource resource_kind TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_resource_name resource_name TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_resource_uid resource_uid TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_change_source change_source TYPE set(10) GRANULARITY 4,

    PROJECTION platform_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, api_group, resource_kind, resource_uid)
    ),
    PROJECTION actor_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, actor_name, api_group,
                           resource_kind, resource_uid)
    ),
    PROJECTION actor_uid_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(timestamp), timestamp, actor_uid, api_group,
                           resource_kind, resource_uid)
    )
)
ENGINE = ${REPLACING}(reindex_version)
PARTITION BY toYYYYMMDD(timestamp)
ORDER BY (toStartOfHour(timestamp), timestamp, tenant_type, tenant_name, origin_id)
TTL timestamp + INTERVAL 60 DAY DELETE
SETTINGS
    ttl_only_drop_parts = 1,
    deduplicate_merge_projection_mode = 'rebuild',
    non_replicated_deduplication_window = ${DEDUP_WINDOW};
