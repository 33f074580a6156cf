-- Whether ccvec refresh rebuilds its materialized views CONCURRENTLY (readers never blocked, the
-- default) or in place. A concurrent refresh computes the new rows, compares them with the old ones
-- and rewrites those that differ; when nearly every row changes (percentiles, scores), that costs
-- about twice a plain refresh: at 1M images with 1 % changed, cluster mates 17.4 s against 2.9 s,
-- neighbourhood popularity 23.5 s against 10.7 s (bench/refresh.py, docs/benchmarks.md). A plain
-- refresh holds an exclusive lock while it runs, so readers of that view (ccvec.substitute reads
-- cluster_mate while serving a page) wait for it.

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('refresh.concurrently', 1, 'ccvec refresh: 1 = rebuild the materialized views CONCURRENTLY (readers never wait; about twice the work when most rows change), 0 = in place (faster; readers of a view wait while it is rebuilt)')
ON CONFLICT (name) DO NOTHING;

CREATE FUNCTION ccvec.refresh_concurrently(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT ccvec.view_populated(p_name) AND ccvec.setting('refresh.concurrently') <> 0
$$;
COMMENT ON FUNCTION ccvec.refresh_concurrently(text) IS
    'Whether materialized view ccvec.p_name is to be refreshed CONCURRENTLY: it has data (a first fill cannot be concurrent) and setting refresh.concurrently is not 0.';
