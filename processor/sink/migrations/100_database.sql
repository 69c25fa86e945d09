-- The database and the migration bookkeeping table (upstream layout: schema_migrations is a
-- ReplacingMergeTree ordered by version, one row per applied file with its sha256).
-- Placeholders and directives are documented in processor/sink/migrate.py.
CREATE DATABASE IF NOT EXISTS ${DB}
--@replicated ON CLUSTER '${CLUSTER}'
--@replicated ENGINE = Replicated('/clickhouse/activity/databases/${DB}', '{shard}', '{replica}')
;

CREATE TABLE IF NOT EXISTS ${DB}.schema_migrations
(
    version UInt32,
    name String,
    applied_at DateTime64(3) DEFAULT now64(3),
    checksum String
)
ENGINE = ${REPLACING}()
ORDER BY version;
