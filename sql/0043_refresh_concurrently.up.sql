-- Which materialized views ccvec refresh rebuilds CONCURRENTLY. A concurrent refresh computes the
-- new rows, compares them with the old ones and rewrites those that differ, so readers are never
-- blocked; when nearly every row changes (percentiles, scores), that costs about twice an in-place
-- refresh: at 1M images with 1 % changed, cluster mates 17.4 s against 2.8 s, neighbourhood
-- popularity 23.5 s against 9.2 s, novelty 28.5 s against 14.4 s (bench/refresh.py,
-- docs/benchmarks.md). An in-place refresh holds an exclusive lock while it runs: readers of that
-- view wait for it.
--
-- So only the views that serve readers while ccvec writes are refreshed concurrently: image_score
-- (what a search engine ranks by), cluster_mate (ccvec.substitute reads it for every A/B page) and
-- inferred_tags. The others are inputs of image_score, rebuilt earlier in the same refresh
-- (observed_popularity, neighbourhood_popularity, web_authority), or read by people through
-- `ccvec scores` and the report (image_novelty): they are rebuilt in place. Setting
-- refresh.concurrently = 0 rebuilds every view in place, 2 every view concurrently.

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('refresh.concurrently', 1, 'ccvec refresh: 1 = rebuild the views that serve readers (image_score, cluster_mate, inferred_tags) CONCURRENTLY and the others in place, 2 = every view CONCURRENTLY (readers of none wait; about twice the work where most rows change), 0 = every view in place (fastest; readers of a view wait while it is rebuilt)')
ON CONFLICT (name) DO NOTHING;

CREATE FUNCTION ccvec.refresh_concurrently(p_name text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT ccvec.view_populated(p_name)
           AND CASE ccvec.setting('refresh.concurrently')
                   WHEN 0 THEN false
                   WHEN 2 THEN true
                   ELSE p_name IN ('image_score', 'cluster_mate', 'inferred_tags')
               END
$$;
COMMENT ON FUNCTION ccvec.refresh_concurrently(text) IS
    'Whether materialized view ccvec.p_name is to be refreshed CONCURRENTLY: it has data (a first fill cannot be concurrent) and setting refresh.concurrently says so (1, the default: the views that serve readers, image_score, cluster_mate and inferred_tags; 2: all; 0: none).';
