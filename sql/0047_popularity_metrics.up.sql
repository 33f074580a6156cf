-- Providers beyond Openverse's five get a popularity metric from the command line, and a catalog
-- whose rows carry metrics nobody counts is told so. A new user's manifest gave 164 images
-- meta_data {"views": N} under providers with no row in ccvec.popularity_metric: the refresh
-- ignored them without a word, and the report said no metric existed.

CREATE FUNCTION ccvec.set_popularity_metric(p_provider text, p_metric text, p_percentile double precision DEFAULT 0.85)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(btrim(p_provider), '') = '' OR coalesce(btrim(p_metric), '') = '' THEN
        RAISE EXCEPTION 'a popularity metric needs a provider and a meta_data key' USING ERRCODE = 'VC001';
    END IF;
    IF p_percentile IS NULL OR NOT (p_percentile > 0 AND p_percentile < 1) THEN
        RAISE EXCEPTION 'percentile must be between 0 and 1 (exclusive), not %', p_percentile USING ERRCODE = 'VC001';
    END IF;
    INSERT INTO ccvec.popularity_metric AS m (provider, metric, percentile)
    VALUES (p_provider, p_metric, p_percentile)  -- as the catalog writes them: ' x ' is not 'x'
    ON CONFLICT (provider) DO UPDATE  -- a changed metric is stale (computed_at NULL) until a refresh
        SET metric = excluded.metric, percentile = excluded.percentile,
            value_at_percentile = CASE WHEN (m.metric, m.percentile) = (excluded.metric, excluded.percentile)
                                       THEN m.value_at_percentile END,
            constant = CASE WHEN (m.metric, m.percentile) = (excluded.metric, excluded.percentile)
                            THEN m.constant END,
            computed_at = CASE WHEN (m.metric, m.percentile) = (excluded.metric, excluded.percentile)
                               THEN m.computed_at END;
END $$;
COMMENT ON FUNCTION ccvec.set_popularity_metric(text, text, double precision) IS
    'Count provider p_provider''s meta_data key p_metric as its popularity metric, at percentile p_percentile (Openverse: 0.85), adding or replacing its row of ccvec.popularity_metric; the next refresh computes its constant and scores. `ccvec popularity metric`. Raises VC001 for an empty provider or key or a percentile outside (0, 1).';

CREATE FUNCTION ccvec.popularity_metrics()
RETURNS TABLE (provider text, metric text, percentile double precision, value_at_percentile double precision,
               constant double precision, images bigint)
LANGUAGE sql STABLE AS $$
    SELECT m.provider, m.metric, m.percentile, m.value_at_percentile, m.constant, m.images
    FROM ccvec.popularity_metric m ORDER BY m.provider
$$;
COMMENT ON FUNCTION ccvec.popularity_metrics() IS
    'Every provider''s popularity metric: its meta_data key, percentile, the value at that percentile and the constant C of the last refresh, and how many images had a value. `ccvec popularity metrics`.';

CREATE FUNCTION ccvec.popularity_metrics_stale() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM ccvec.popularity_metric m WHERE m.computed_at IS NULL)
$$;
COMMENT ON FUNCTION ccvec.popularity_metrics_stale() IS
    'Whether a provider''s popularity metric was set or changed since the last refresh (its constant not computed yet): `ccvec run` refreshes the scores then, even when no image changed.';

-- The providers are found through the provider index, one step per distinct provider (a loose
-- index scan: a few hundred steps for Openverse's catalog), and each provider without a metric is
-- sampled, p_sample rows at most: cheap at any catalog size, run by every refresh.
CREATE FUNCTION ccvec.unmetered_metrics(p_sample integer DEFAULT 1000)
RETURNS TABLE (provider text, metric text, images bigint, sampled bigint)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE providers(provider) AS (
        (SELECT c.provider FROM ccvec.catalog c WHERE c.provider IS NOT NULL ORDER BY c.provider LIMIT 1)
        UNION ALL
        SELECT (SELECT c.provider FROM ccvec.catalog c WHERE c.provider > p.provider ORDER BY c.provider LIMIT 1)
        FROM providers p WHERE p.provider IS NOT NULL
    ),
    keys AS (SELECT DISTINCT m.metric FROM ccvec.popularity_metric m),
    sampled AS (
        SELECT p.provider, s.meta_data
        FROM providers p
        CROSS JOIN LATERAL (SELECT c.meta_data FROM ccvec.catalog c WHERE c.provider = p.provider LIMIT p_sample) s
        WHERE p.provider IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM ccvec.popularity_metric m WHERE m.provider = p.provider)
    )
    SELECT s.provider, k.metric,
           count(*) FILTER (WHERE ccvec.metric_value(s.meta_data, k.metric) IS NOT NULL),
           count(*)
    FROM sampled s CROSS JOIN keys k
    GROUP BY s.provider, k.metric
    HAVING count(*) FILTER (WHERE ccvec.metric_value(s.meta_data, k.metric) IS NOT NULL) > 0
    ORDER BY 3 DESC, 1, 2
$$;
COMMENT ON FUNCTION ccvec.unmetered_metrics(integer) IS
    'Providers with no popularity metric whose images carry a value under a key another provider counts (views, downloads, ...): how many of the first p_sample images looked at per provider do, and how many were looked at. Providers are found through the provider index, so the check stays cheap at catalog size; what `ccvec refresh` and `ccvec run` warn about.';
