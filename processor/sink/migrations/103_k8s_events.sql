-- Kubernetes events, events.k8s.io/v1 JSON (upstream final layout of audit.k8s_events,
-- migrations 008 + 009). Writers insert only event_json; inserted_at is the version column.
-- Hazard (upstream, kept): an event with none of eventTime, deprecatedFirstTimestamp,
-- deprecatedLastTimestamp, series.lastObservedTime, metadata.creationTimestamp makes the timestamp
-- columns NULL and the whole insert fails (code 349). The worker guards against it by setting
-- eventTime on such events (processor/worker/raw.py); the sink reports it as a non-retriable error.
CREATE TABLE IF NOT EXISTS ${DB}.k8s_events
(
    event_json String CODEC(ZSTD(3)),
    inserted_at DateTime64(9) DEFAULT now64(9),
    scope_type LowCardinality(String) MATERIALIZED JSONExtractString(
        event_json, 'metadata', 'annotations', 'platform.miloapis.com/scope.type'),
    scope_name String MATERIALIZED JSONExtractString(
        event_json, 'metadata', 'annotations', 'platform.miloapis.com/scope.name'),
    first_timestamp DateTime64(3) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'eventTime')),
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'deprecatedFirstTimestamp')),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'metadata', 'creationTimestamp'))),
    last_timestamp DateTime64(3) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'series', 'lastObservedTime')),
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'deprecatedLastTimestamp')),
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'eventTime')),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'metadata', 'creationTimestamp'))),
    event_time DateTime64(6) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'eventTime'), 6),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'deprecatedFirstTimestamp'), 6),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'metadata', 'creationTimestamp'), 6)),
    namespace LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'metadata', 'namespace'),
    name String MATERIALIZED JSONExtractString(event_json, 'metadata', 'name'),
    uid String MATERIALIZED JSONExtractString(event_json, 'metadata', 'uid'),
    regarding_api_group LowCardinality(String) MATERIALIZED if(
        position(JSONExtractString(event_json, 'regarding', 'apiVersion'), '/') > 0,
        splitByChar('/', JSONExtractString(event_json, 'regarding', 'apiVersion'))[1],
        ''),
    regarding_api_version LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'regarding', 'apiVersion'),
    regarding_kind LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'regarding', 'kind'),
    regarding_namespace LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'regarding', 'namespace'),
    regarding_name String MATERIALIZED JSONExtractString(event_json, 'regarding', 'name'),
    regarding_uid String MATERIALIZED JSONExtractString(event_json, 'regarding', 'uid'),
    regarding_field_path String MATERIALIZED
        JSONExtractString(event_json, 'regarding', 'fieldPath'),
    related_api_version LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'related', 'apiVersion'),
    related_kind LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'related', 'kind'),
    related_namespace LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'related', 'namespace'),
    related_name String MATERIALIZED JSONExtractString(event_json, 'related', 'name'),
    reason LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'reason'),
    type LowCardinality(String) MATERIALIZED
        coalesce(JSONExtractString(event_json, 'type'), 'Normal'),
    action LowCardinality(String) MATERIALIZED JSONExtractString(event_json, 'action'),
    series_count Int32 MATERIALIZED JSONExtractInt(event_json, 'series', 'count'),
    series_last_observed DateTime64(6) MATERIALIZED coalesce(
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'series', 'lastObservedTime'), 6),
        parseDateTime64BestEffortOrNull(JSONExtractString(event_json, 'eventTime'), 6),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'deprecatedLastTimestamp'), 6),
        parseDateTime64BestEffortOrNull(
            JSONExtractString(event_json, 'metadata', 'creationTimestamp'), 6)),
    is_series Bool MATERIALIZED JSONHas(event_json, 'series'),
    source_component LowCardinality(String) MATERIALIZED
        JSONExtractString(event_json, 'reportingController'),
    source_host String MATERIALIZED JSONExtractString(event_json, 'reportingInstance'),

    INDEX idx_name_bloom name TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_uid_bloom uid TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_regarding_name_bloom regarding_name TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_regarding_uid_bloom regarding_uid TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_scope_name_bloom scope_name TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_related_name_bloom related_name TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_namespace_set namespace TYPE set(100) GRANULARITY 4,
    INDEX idx_scope_type_set scope_type TYPE set(10) GRANULARITY 4,
    INDEX idx_regarding_api_group_set regarding_api_group TYPE set(50) GRANULARITY 4,
    INDEX idx_regarding_kind_set regarding_kind TYPE set(50) GRANULARITY 4,
    INDEX idx_reason_set reason TYPE set(100) GRANULARITY 4,
    INDEX idx_type_set type TYPE set(10) GRANULARITY 4,
    INDEX idx_source_component_set source_component TYPE set(50) GRANULARITY 4,
    INDEX idx_action_set action TYPE set(100) GRANULARITY 4,
    INDEX idx_is_series_set is_series TYPE set(2) GRANULARITY 4,
    INDEX idx_related_kind_set related_kind TYPE set(50) GRANULARITY 4,
    INDEX idx_related_namespace_set related_namespace TYPE set(100) GRANULARITY 4,
    INDEX idx_related_api_version_set related_api_version TYPE set(50) GRANULARITY 4,
    INDEX idx_first_timestamp_minmax first_timestamp TYPE minmax GRANULARITY 4,
    INDEX idx_last_timestamp_minmax last_timestamp TYPE minmax GRANULARITY 4,
    INDEX idx_inserted_at_minmax inserted_at TYPE minmax GRANULARITY 4,
    INDEX idx_event_time_minmax event_time TYPE minmax GRANULARITY 4,
    INDEX idx_series_last_observed_minmax series_last_observed TYPE minmax GRANULARITY 4,

    PROJECTION platform_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(last_timestamp), last_timestamp, regarding_api_group,
                           regarding_kind, type, uid)
    ),
    PROJECTION regarding_object_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(last_timestamp), last_timestamp, regarding_api_group,
                           regarding_kind, scope_type, scope_name, type, uid)
    ),
    PROJECTION source_query_projection
    (
        SELECT * ORDER BY (toStartOfHour(last_timestamp), last_timestamp, source_component,
                           scope_type, scope_name, regarding_api_group, regarding_kind, type, uid)
    )
)
ENGINE = ${REPLACING}(inserted_at)
PARTITION BY toYYYYMMDD(last_timestamp)
ORDER BY (toStartOfHour(last_timestamp), last_timestamp, scope_type, scope_name,
          regarding_api_group, regarding_kind, type, uid)
TTL last_timestamp + INTERVAL 60 DAY DELETE
SETTINGS
    ttl_only_drop_parts = 1,
    deduplicate_merge_projection_mode = 'rebuild',
    non_replicated_deduplication_window = ${DEDUP_WINDOW};
