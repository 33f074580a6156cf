-- Popularity and authority in [0, 1] for every image, and the steps that recompute them.

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('visualrank.damping', 0.85, 'PageRank damping d'),
    ('visualrank.tolerance', 1e-6, 'stop when the L1 change of the rank vector is below this'),
    ('visualrank.max_iterations', 200, 'stop after this many iterations at most'),
    ('authority.weight_visual', 0.5, 'weight of VisualRank in authority'),
    ('authority.weight_web', 0.5, 'weight of the web (host/domain, else provider prior) in authority'),
    ('popularity.none', 0, 'popularity of images with neither a metric nor neighbours that have one');

-- ---------------------------------------------------------------- standardised popularity

-- Openverse's per-provider metric and constant: C = ((1 - p) / p) * V_p, V_p the p-th percentile of
-- the raw metric; score = v / (v + C), so V_p maps to exactly p and every score lies in [0, 1).
CREATE TABLE ccvec.popularity_metric (
    provider            text PRIMARY KEY,
    metric              text NOT NULL,              -- key in meta_data
    percentile          double precision NOT NULL DEFAULT 0.85 CHECK (percentile > 0 AND percentile < 1),
    value_at_percentile double precision,
    constant            double precision,
    images              bigint,
    computed_at         timestamptz
);
INSERT INTO ccvec.popularity_metric (provider, metric) VALUES
    ('flickr', 'views'), ('wikimedia', 'global_usage_count'), ('nappy', 'downloads'),
    ('rawpixel', 'download_count'), ('stocksnap', 'downloads_raw');

-- A metric value from meta_data, or NULL when absent or not a non-negative number.
CREATE FUNCTION ccvec.metric_value(p_meta jsonb, p_metric text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(p_meta -> p_metric) = 'number' AND (p_meta ->> p_metric)::double precision >= 0
                THEN (p_meta ->> p_metric)::double precision
                WHEN jsonb_typeof(p_meta -> p_metric) = 'string' AND (p_meta ->> p_metric) ~ '^\s*[0-9]+(\.[0-9]+)?\s*$'
                THEN (p_meta ->> p_metric)::double precision END
$$;

CREATE FUNCTION ccvec.refresh_popularity_constants() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m ccvec.popularity_metric;
    n integer := 0;
BEGIN
    FOR m IN SELECT * FROM ccvec.popularity_metric LOOP
        UPDATE ccvec.popularity_metric pm SET
            value_at_percentile = s.v,
            constant = CASE WHEN s.v IS NULL THEN NULL ELSE ((1 - m.percentile) / m.percentile) * s.v END,
            images = s.n,
            computed_at = now()
        FROM (SELECT percentile_disc(m.percentile) WITHIN GROUP (ORDER BY ccvec.metric_value(c.meta_data, m.metric)) AS v,
                     count(*) AS n
              FROM ccvec.catalog c
              WHERE c.provider = m.provider AND ccvec.metric_value(c.meta_data, m.metric) IS NOT NULL) s
        WHERE pm.provider = m.provider;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The score of one raw value against its provider's constant.
CREATE FUNCTION ccvec.standardize(p_value double precision, p_constant double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_value IS NULL OR p_constant IS NULL THEN NULL
                WHEN p_value + p_constant <= 0 THEN 0
                ELSE p_value / (p_value + p_constant) END
$$;

-- Popularity observed from the image's own provider metric.
CREATE MATERIALIZED VIEW ccvec.observed_popularity AS
SELECT c.identifier, ccvec.standardize(ccvec.metric_value(c.meta_data, m.metric), m.constant) AS popularity,
       m.metric, ccvec.metric_value(c.meta_data, m.metric) AS raw_value
FROM ccvec.catalog c
JOIN ccvec.popularity_metric m ON m.provider = c.provider
WHERE ccvec.metric_value(c.meta_data, m.metric) IS NOT NULL AND m.constant IS NOT NULL
WITH DATA;  -- empty until the constants are computed, and cheap: readers never meet an unpopulated view
CREATE UNIQUE INDEX observed_popularity_key ON ccvec.observed_popularity (identifier);

-- Observed popularity: ccvec's own standardisation, else the catalog's standardized_popularity
-- (an Openverse catalog already has one). Neighbourhood estimates and image_score read this.
CREATE OR REPLACE VIEW ccvec.popularity_source AS
SELECT identifier, popularity FROM ccvec.observed_popularity
UNION ALL
SELECT c.identifier, c.standardized_popularity FROM ccvec.catalog c
WHERE c.standardized_popularity IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ccvec.observed_popularity o WHERE o.identifier = c.identifier);

-- ---------------------------------------------------------------- VisualRank

CREATE TABLE ccvec.visualrank_run (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    knn_run     bigint NOT NULL REFERENCES ccvec.knn_run (id) ON DELETE CASCADE,
    damping     double precision NOT NULL,
    tolerance   double precision NOT NULL,
    iterations  integer,
    residual    double precision,
    nodes       integer,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

CREATE TABLE ccvec.visual_rank (
    identifier uuid PRIMARY KEY,
    rank       double precision NOT NULL,   -- stationary probability; sums to 1 over the graph
    score      real NOT NULL,               -- percentile of rank in [0, 1]
    run_id     bigint NOT NULL REFERENCES ccvec.visualrank_run (id) ON DELETE CASCADE
);

-- PageRank over a kNN run: an image passes its rank to the images it lists as neighbours, in
-- proportion to similarity (the column-normalised similarity matrix); images listing nobody
-- (dangling) spread theirs evenly; r <- d (S r + dangling / N) + (1 - d) / N, iterated until the
-- L1 change is below the tolerance. Starts from the previous ranks when there are any (warm start),
-- so a refresh after small changes needs few iterations.
CREATE FUNCTION ccvec.visualrank(p_knn_run bigint, p_damping double precision DEFAULT NULL,
                                 p_tolerance double precision DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
    d double precision := coalesce(p_damping, ccvec.setting('visualrank.damping'));
    tol double precision := coalesce(p_tolerance, ccvec.setting('visualrank.tolerance'));
    max_it integer := ccvec.setting('visualrank.max_iterations')::integer;
    n integer;
    it integer := 0;
    delta double precision := 1;
    dangling double precision;
BEGIN
    INSERT INTO ccvec.visualrank_run (knn_run, damping, tolerance) VALUES (p_knn_run, d, tol) RETURNING id INTO v_run;
    -- whole-table passes: hash joins, never nested loops of probes over a million edges
    PERFORM set_config('enable_nestloop', 'off', true);
    -- nodes: every image on either end of an edge
    CREATE TEMP TABLE vr_node ON COMMIT DROP AS
    SELECT node, (row_number() OVER (ORDER BY node))::integer AS id
    FROM (SELECT identifier AS node FROM ccvec.knn_edge WHERE run_id = p_knn_run
          UNION SELECT neighbour FROM ccvec.knn_edge WHERE run_id = p_knn_run) x;
    ALTER TABLE vr_node ADD PRIMARY KEY (id);
    CREATE UNIQUE INDEX ON vr_node (node);
    SELECT count(*) INTO n FROM vr_node;
    IF n = 0 THEN
        RAISE EXCEPTION 'kNN run % has no edges', p_knn_run;
    END IF;
    -- transition weights, normalised per source (negative similarities carry no vote)
    CREATE TEMP TABLE vr_edge ON COMMIT DROP AS
    SELECT s.id AS src, t.id AS dst, greatest(e.similarity, 0)::double precision AS w
    FROM ccvec.knn_edge e JOIN vr_node s ON s.node = e.identifier JOIN vr_node t ON t.node = e.neighbour
    WHERE e.run_id = p_knn_run;
    ANALYZE vr_edge;
    UPDATE vr_edge v SET w = v.w / t.total
    FROM (SELECT src, sum(w) AS total FROM vr_edge GROUP BY src) t WHERE t.src = v.src AND t.total > 0;
    DELETE FROM vr_edge WHERE w <= 0;
    ANALYZE vr_edge;
    -- start: previous ranks where known, uniform otherwise; renormalised
    CREATE TEMP TABLE vr_rank ON COMMIT DROP AS
    SELECT v.id, coalesce(p.rank, 1.0 / n) AS r, s.src IS NULL AS is_dangling
    FROM vr_node v
    LEFT JOIN ccvec.visual_rank p ON p.identifier = v.node
    LEFT JOIN (SELECT DISTINCT src FROM vr_edge) s ON s.src = v.id;
    UPDATE vr_rank SET r = r / (SELECT sum(r) FROM vr_rank);
    ALTER TABLE vr_rank ADD PRIMARY KEY (id);
    ANALYZE vr_rank;
    WHILE delta > tol AND it < max_it LOOP
        SELECT coalesce(sum(r), 0) INTO dangling FROM vr_rank WHERE is_dangling;
        CREATE TEMP TABLE vr_next ON COMMIT DROP AS
        SELECT v.id, v.is_dangling,
               (1 - d) / n + d * (coalesce(i.incoming, 0) + dangling / n) AS r
        FROM vr_rank v
        LEFT JOIN (SELECT e.dst, sum(e.w * s.r) AS incoming FROM vr_edge e JOIN vr_rank s ON s.id = e.src
                   GROUP BY e.dst) i ON i.dst = v.id;
        SELECT sum(abs(x.r - y.r)) INTO delta FROM vr_next x JOIN vr_rank y USING (id);
        DROP TABLE vr_rank;
        ALTER TABLE vr_next RENAME TO vr_rank;
        ALTER TABLE vr_rank ADD PRIMARY KEY (id);
        ANALYZE vr_rank;
        it := it + 1;
    END LOOP;
    DELETE FROM ccvec.visual_rank;
    INSERT INTO ccvec.visual_rank (identifier, rank, score, run_id)
    SELECT v.node, r.r, (percent_rank() OVER (ORDER BY r.r))::real, v_run
    FROM vr_rank r JOIN vr_node v USING (id);
    UPDATE ccvec.visualrank_run SET iterations = it, residual = delta, nodes = n, finished_at = now()
    WHERE id = v_run;
    DROP TABLE vr_rank; DROP TABLE vr_edge; DROP TABLE vr_node;
    RETURN v_run;
END $$;

-- ---------------------------------------------------------------- web authority (Common Crawl)

-- Host or domain ranks from a Common Crawl web-graph release; host_rev as in the files
-- (labels reversed, leading www. dropped: www.sub.example.com -> com.example.sub).
CREATE TABLE ccvec.web_rank (
    kind         text NOT NULL CHECK (kind IN ('host', 'domain')),
    host_rev     text NOT NULL,
    harmonic_pos bigint NOT NULL,
    harmonic_val double precision,
    pr_pos       bigint,
    pr_val       double precision,
    n_hosts      bigint,
    PRIMARY KEY (kind, host_rev)
);

CREATE TABLE ccvec.web_rank_release (
    kind      text PRIMARY KEY,
    source    text NOT NULL,
    rows      bigint NOT NULL,
    max_pos   bigint NOT NULL,          -- the lowest-ranked position: the scale of the release
    loaded_at timestamptz NOT NULL DEFAULT now()
);

-- www.Sub.Example.com:8080 -> com.example.sub (Common Crawl's reversed form)
CREATE FUNCTION ccvec.reverse_host(p_url text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_to_string(ARRAY(
               SELECT label FROM unnest(string_to_array(
                   regexp_replace(lower(substring(p_url FROM '^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^@/]*@)?([^/:?#]+)')),
                                  '^www\.', ''), '.')) WITH ORDINALITY AS t(label, i)
               ORDER BY i DESC), '.')
$$;

-- The registered domain of a reversed host: two labels, or three under common second-level
-- suffixes (com.example.www.x -> com.example; uk.co.bbc.news -> uk.co.bbc). Without the full
-- public-suffix list; good for the large majority of catalog hosts.
CREATE FUNCTION ccvec.reversed_domain(p_host_rev text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN p_host_rev IS NULL OR p_host_rev = '' THEN NULL
        WHEN split_part(p_host_rev, '.', 2) IN ('co', 'com', 'org', 'net', 'ac', 'gov', 'edu', 'or', 'ne', 'go')
             AND length(split_part(p_host_rev, '.', 1)) = 2 AND split_part(p_host_rev, '.', 3) <> ''
        THEN array_to_string((string_to_array(p_host_rev, '.'))[1:3], '.')
        ELSE array_to_string((string_to_array(p_host_rev, '.'))[1:2], '.') END
$$;

-- Rank position -> [0, 1]: 1 - log(pos) / log(largest position of the release). Positions are heavy-tailed
-- (a few hosts hold most links), so the log keeps the middle of the web apart.
CREATE FUNCTION ccvec.web_rank_score(p_pos bigint, p_max_pos bigint) RETURNS real
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_pos IS NULL OR p_max_pos IS NULL THEN NULL
                WHEN p_max_pos <= 1 THEN 1
                ELSE greatest(0, least(1, 1 - ln(greatest(p_pos, 1)) / ln(p_max_pos)))::real END
$$;

-- Authority each image inherits from the web: its landing page's host, else its registered
-- domain, else its provider's source class (Openverse's static boosts, /100).
CREATE MATERIALIZED VIEW ccvec.web_authority AS
WITH img AS (
    SELECT c.identifier, c.provider, ccvec.reverse_host(coalesce(c.foreign_landing_url, c.url)) AS host_rev
    FROM ccvec.catalog c
)
SELECT i.identifier, i.host_rev,
       coalesce(ccvec.web_rank_score(h.harmonic_pos, hr.max_pos),
                ccvec.web_rank_score(d.harmonic_pos, dr.max_pos),
                CASE coalesce(pc.source_class, 'default')
                    WHEN 'cultural_institution' THEN 0.90 WHEN 'curated' THEN 0.85
                    WHEN 'social_media' THEN 0.75 ELSE 0.80 END)::real AS authority,
       CASE WHEN h.harmonic_pos IS NOT NULL THEN 'host'
            WHEN d.harmonic_pos IS NOT NULL THEN 'domain' ELSE 'provider' END AS source
FROM img i
LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = i.host_rev
LEFT JOIN ccvec.web_rank_release hr ON hr.kind = 'host'
LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = ccvec.reversed_domain(i.host_rev)
LEFT JOIN ccvec.web_rank_release dr ON dr.kind = 'domain'
LEFT JOIN ccvec.provider_class pc ON pc.provider = i.provider
WITH NO DATA;
CREATE UNIQUE INDEX web_authority_key ON ccvec.web_authority (identifier);

-- ---------------------------------------------------------------- the scores

-- Every catalog image: popularity and authority in [0, 1], their parts, and where each came from.
CREATE MATERIALIZED VIEW ccvec.image_score AS
SELECT c.identifier,
       coalesce(o.popularity, n.estimate, ccvec.setting('popularity.none'))::real AS popularity,
       CASE WHEN o.popularity IS NOT NULL THEN 'observed'
            WHEN n.estimate IS NOT NULL THEN 'inferred' ELSE 'none' END AS popularity_provenance,
       CASE WHEN o.popularity IS NOT NULL THEN 1 ELSE coalesce(n.support, 0) END AS popularity_support,
       (CASE WHEN v.score IS NULL THEN w.authority
             ELSE (ccvec.setting('authority.weight_visual') * v.score
                   + ccvec.setting('authority.weight_web') * w.authority)
                  / (ccvec.setting('authority.weight_visual') + ccvec.setting('authority.weight_web')) END)::real
           AS authority,
       v.score AS visual_authority,
       CASE WHEN w.source IN ('host', 'domain') THEN w.authority END AS domain_authority,
       CASE WHEN w.source = 'provider' THEN w.authority END AS prior_authority,
       w.source AS web_source
FROM ccvec.catalog c
LEFT JOIN ccvec.popularity_source o ON o.identifier = c.identifier
LEFT JOIN ccvec.neighbourhood_popularity n ON n.identifier = c.identifier
LEFT JOIN ccvec.visual_rank v ON v.identifier = c.identifier
LEFT JOIN ccvec.web_authority w ON w.identifier = c.identifier
WITH NO DATA;
CREATE UNIQUE INDEX image_score_key ON ccvec.image_score (identifier);
