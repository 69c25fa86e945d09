-- The experimental ngram full-text index on activities.summary (upstream idx_summary_search).
-- Queries do not rely on it (search is multiSearchAnyCaseInsensitive); it needs the
-- function-style tokenizer syntax and the index GA in ClickHouse 26.2, so older servers skip this
-- file (it is not recorded and is applied after an upgrade).
--@requires 26.2
ALTER TABLE ${DB}.activities
    ADD INDEX IF NOT EXISTS idx_summary_search summary TYPE text(tokenizer = ngrams(3)) GRANULARITY 1;
