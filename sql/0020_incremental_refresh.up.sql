-- Incremental refresh (issue 17): per-image inputs of the scores computed once per change, and
-- dense integer node ids so VisualRank streams its edges as integer pairs.

-- ---------------------------------------------------------------- grants survive the rebuild

-- The views below are dropped and recreated; remember who could read them (ccvec.grant_access).
CREATE TEMP TABLE saved_acl AS
SELECT c.relname::text AS relname, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END AS grantee
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.relnamespace = 'ccvec'::regnamespace AND a.grantee <> c.relowner
  AND c.relname IN ('observed_popularity', 'popularity_source', 'neighbourhood_popularity',
                    'web_authority', 'image_score', 'cluster_mate', 'ab_outcome',
                    'ab_alternate_signal');

-- ---------------------------------------------------------------- per-image inputs

-- What the scores need from each catalog row, derived once and again only when the row changes:
-- the raw metric value (JSON parsing), the reversed host and registered domain (URL parsing).
-- fingerprint is a 64-bit hash of the inputs (provider, configured metric, its value, page URL).
CREATE TABLE ccvec.score_input (
    identifier  uuid PRIMARY KEY,
    fingerprint bigint NOT NULL,
    provider    text,
    raw_value   double precision,
    host_rev    text,
    domain_rev  text
);
COMMENT ON TABLE ccvec.score_input IS
    'Per catalog image, what the scores read from its row, derived once per change by ccvec.score_input_sync: the provider, the raw value of its provider''s metric (ccvec.metric_value), the reversed host of its landing page (else url) and its registered domain, and a 64-bit fingerprint of those inputs.';

CREATE FUNCTION ccvec.score_input_sync() RETURNS TABLE (changed bigint, removed bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_changed bigint;
    v_removed bigint;
BEGIN
    INSERT INTO ccvec.score_input AS s (identifier, fingerprint, provider, raw_value, host_rev, domain_rev)
    SELECT x.identifier, x.fingerprint, x.provider, ccvec.metric_value(x.meta_data, x.metric),
           h.host_rev, ccvec.reversed_domain(h.host_rev)
    FROM (SELECT c.identifier, c.provider, c.meta_data, m.metric,
                 coalesce(c.foreign_landing_url, c.url) AS page,
                 hashtextextended(row(c.provider, m.metric, c.meta_data -> m.metric,
                                      coalesce(c.foreign_landing_url, c.url))::text, 0) AS fingerprint
          FROM ccvec.catalog c LEFT JOIN ccvec.popularity_metric m ON m.provider = c.provider) x
    LEFT JOIN ccvec.score_input o ON o.identifier = x.identifier
    CROSS JOIN LATERAL (SELECT ccvec.reverse_host(x.page) AS host_rev) h
    WHERE o.fingerprint IS DISTINCT FROM x.fingerprint
    ON CONFLICT (identifier) DO UPDATE SET
        fingerprint = excluded.fingerprint, provider = excluded.provider, raw_value = excluded.raw_value,
        host_rev = excluded.host_rev, domain_rev = excluded.domain_rev;
    GET DIAGNOSTICS v_changed = ROW_COUNT;
    DELETE FROM ccvec.score_input s
    WHERE NOT EXISTS (SELECT 1 FROM ccvec.catalog c WHERE c.identifier = s.identifier);
    GET DIAGNOSTICS v_removed = ROW_COUNT;
    RETURN QUERY SELECT v_changed, v_removed;
END $$;
COMMENT ON FUNCTION ccvec.score_input_sync() IS
    'Bring ccvec.score_input in line with the catalog: rows that are new or whose inputs changed (fingerprint differs) are derived again, rows gone from the catalog are removed. Returns how many were (re)derived and removed. Run by ccvec.refresh_popularity_constants, the first step of ccvec refresh.';

-- The constants from the cached raw values: one pass over a float column, no JSON.
CREATE OR REPLACE FUNCTION ccvec.refresh_popularity_constants() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    n integer;
BEGIN
    PERFORM ccvec.score_input_sync();
    UPDATE ccvec.popularity_metric pm SET
        value_at_percentile = s.v,
        constant = CASE WHEN s.v IS NULL THEN NULL ELSE ((1 - pm.percentile) / pm.percentile) * s.v END,
        images = s.n,
        computed_at = now()
    FROM (SELECT m.provider,
                 percentile_disc(m.percentile) WITHIN GROUP (ORDER BY i.raw_value) AS v,
                 count(i.raw_value) AS n
          FROM ccvec.popularity_metric m
          LEFT JOIN ccvec.score_input i ON i.provider = m.provider AND i.raw_value IS NOT NULL
          GROUP BY m.provider, m.percentile) s
    WHERE pm.provider = s.provider;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.refresh_popularity_constants() IS
    'Recompute every provider''s row of ccvec.popularity_metric from the raw values in ccvec.score_input, after bringing it up to date (ccvec.score_input_sync): the metric''s value at the percentile (discrete), the constant (NULL when the provider has no valid values), and the count of values. Returns the number of providers.';

-- ---------------------------------------------------------------- views over the inputs

DROP MATERIALIZED VIEW ccvec.observed_popularity CASCADE;  -- and popularity_source, neighbourhood_popularity, image_score, cluster_mate, ab_outcome, ab_alternate_signal
DROP MATERIALIZED VIEW ccvec.web_authority CASCADE;

CREATE MATERIALIZED VIEW ccvec.observed_popularity AS
SELECT i.identifier, ccvec.standardize(i.raw_value, m.constant) AS popularity, m.metric, i.raw_value
FROM ccvec.score_input i
JOIN ccvec.popularity_metric m ON m.provider = i.provider
WHERE i.raw_value IS NOT NULL AND m.constant IS NOT NULL
WITH DATA;
CREATE UNIQUE INDEX observed_popularity_key ON ccvec.observed_popularity (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.observed_popularity IS
    'Popularity from each image''s own provider metric: ccvec.standardize(raw value, provider constant), with the metric and raw value (from ccvec.score_input). Empty until the constants are computed (ccvec refresh).';

CREATE VIEW ccvec.popularity_source AS
SELECT identifier, popularity FROM ccvec.observed_popularity
UNION ALL
SELECT c.identifier, c.standardized_popularity FROM ccvec.catalog c
WHERE c.standardized_popularity IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ccvec.observed_popularity o WHERE o.identifier = c.identifier);
COMMENT ON VIEW ccvec.popularity_source IS
    'Observed popularity per image in [0, 1]: ccvec''s own standardisation (ccvec.observed_popularity) where there is one, else the catalog''s standardized_popularity. Read by neighbourhood estimates and ccvec.image_score.';

CREATE MATERIALIZED VIEW ccvec.neighbourhood_popularity AS
SELECT e.identifier,
       (sum(e.similarity * c.popularity) / sum(e.similarity))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= ccvec.setting('neighbourhood_popularity.min_support') AND sum(e.similarity) > 0
WITH NO DATA;
CREATE UNIQUE INDEX neighbourhood_popularity_key ON ccvec.neighbourhood_popularity (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.neighbourhood_popularity IS
    'Estimated popularity of images from their neighbours in the current graph: estimate = similarity-weighted mean popularity of the neighbours that have one, support = how many (at least setting neighbourhood_popularity.min_support).';

CREATE MATERIALIZED VIEW ccvec.web_authority AS
SELECT i.identifier, i.host_rev,
       coalesce(ccvec.web_rank_score(h.harmonic_pos, hr.max_pos),
                ccvec.web_rank_score(d.harmonic_pos, dr.max_pos),
                CASE coalesce(pc.source_class, 'default')
                    WHEN 'cultural_institution' THEN 0.90 WHEN 'curated' THEN 0.85
                    WHEN 'social_media' THEN 0.75 ELSE 0.80 END)::real AS authority,
       CASE WHEN h.harmonic_pos IS NOT NULL THEN 'host'
            WHEN d.harmonic_pos IS NOT NULL THEN 'domain' ELSE 'provider' END AS source
FROM ccvec.score_input i
LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = i.host_rev
LEFT JOIN ccvec.web_rank_release hr ON hr.kind = 'host'
LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = i.domain_rev
LEFT JOIN ccvec.web_rank_release dr ON dr.kind = 'domain'
LEFT JOIN ccvec.provider_class pc ON pc.provider = i.provider
WITH NO DATA;
CREATE UNIQUE INDEX web_authority_key ON ccvec.web_authority (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.web_authority IS
    'Authority each image inherits from the web, in [0, 1]: the web-rank score of its landing page''s (else its url''s) host, else of its registered domain, else its provider''s source-class prior (0.90 cultural institution, 0.85 curated, 0.80 default, 0.75 social media); source says which. Hosts and domains come from ccvec.score_input.';

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
COMMENT ON MATERIALIZED VIEW ccvec.image_score IS
    'Every catalog image''s popularity and authority in [0, 1], with their parts and where they came from: popularity observed, else estimated from neighbours, else setting popularity.none; authority the weighted mean of VisualRank score and web authority (settings authority.weight_visual, authority.weight_web), web authority alone outside the graph.';

CREATE MATERIALIZED VIEW ccvec.cluster_mate AS
SELECT c.level, c.cluster, c.identifier,
       row_number() OVER (PARTITION BY c.level, c.cluster
                          ORDER BY coalesce(s.popularity, 0) + coalesce(s.authority, 0) DESC, c.identifier) AS position
FROM ccvec.image_cluster c
LEFT JOIN ccvec.image_score s ON s.identifier = c.identifier
WITH NO DATA;
CREATE UNIQUE INDEX cluster_mate_key ON ccvec.cluster_mate (level, cluster, position);
CREATE INDEX cluster_mate_identifier ON ccvec.cluster_mate (identifier, level);
COMMENT ON MATERIALIZED VIEW ccvec.cluster_mate IS
    'Members of every current cluster per level, position 1 the highest popularity + authority (ties by identifier): where ccvec.substitute finds alternates. Filled by ccvec refresh after the scores.';

-- One row per served position with whether it was clicked: the unit of analysis.
CREATE VIEW ccvec.ab_outcome AS
SELECT s.experiment, s.session, s.query, s.rank, s.shown, s.original, s.arm, s.substituted,
       EXISTS (SELECT 1 FROM ccvec.ab_event c
               WHERE c.experiment = s.experiment AND c.event_type = 'click' AND c.session = s.session
                 AND c.query = s.query AND c.result_uuid = s.shown) AS clicked,
       m.cluster
FROM ccvec.ab_served s
JOIN ccvec.experiment e ON e.name = s.experiment
LEFT JOIN ccvec.cluster_mate m ON m.identifier = s.original AND m.level = e.cluster_level;

-- Clicks on alternates, as observed signals for images the catalog rarely shows.
CREATE VIEW ccvec.ab_alternate_signal AS
SELECT shown AS identifier, count(*) AS impressions, count(*) FILTER (WHERE clicked) AS clicks,
       (count(*) FILTER (WHERE clicked))::real / count(*) AS ctr
FROM ccvec.ab_outcome WHERE substituted
GROUP BY shown;
COMMENT ON VIEW ccvec.ab_outcome IS
    'One row per served position with whether its shown image was clicked in that session and query, and the original''s cluster at the experiment''s level: the unit of analysis.';
COMMENT ON VIEW ccvec.ab_alternate_signal IS
    'Per image shown as a substitute: impressions, clicks and click-through rate, as observed signal for images the catalog rarely shows.';

-- ---------------------------------------------------------------- integer node ids for VisualRank

CREATE TABLE ccvec.image_node (
    node       integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identifier uuid NOT NULL UNIQUE
);
COMMENT ON TABLE ccvec.image_node IS
    'A dense integer id per image, never reused: VisualRank streams the graph as integer pairs (12 bytes per edge instead of 36) and skips mapping UUIDs in the client.';

CREATE FUNCTION ccvec.image_node_sync(p_run bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF p_run IS NULL THEN
        INSERT INTO ccvec.image_node (identifier)
        SELECT c.identifier FROM ccvec.catalog c
        WHERE NOT EXISTS (SELECT 1 FROM ccvec.image_node x WHERE x.identifier = c.identifier)
        ON CONFLICT (identifier) DO NOTHING;
    ELSE
        INSERT INTO ccvec.image_node (identifier)
        SELECT DISTINCT u.identifier
        FROM ccvec.knn_edge e CROSS JOIN LATERAL (VALUES (e.identifier), (e.neighbour)) u (identifier)
        WHERE e.run_id = p_run
          AND NOT EXISTS (SELECT 1 FROM ccvec.image_node x WHERE x.identifier = u.identifier)
        ON CONFLICT (identifier) DO NOTHING;
    END IF;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.image_node_sync(bigint) IS
    'Give every catalog image a node id in ccvec.image_node (one anti-join), or with p_run every end of that kNN run''s edges (a full scan of the run: the fallback for graph images missing from the catalog). Returns how many ids were added.';

CREATE FUNCTION ccvec.knn_edges_packed_nodes(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(coalesce(a.node, -1)) || int4send(coalesce(b.node, -1))
                      || float4send(e.similarity), ''::bytea)
    FROM ccvec.knn_edge e
    LEFT JOIN ccvec.image_node a ON a.identifier = e.identifier
    LEFT JOIN ccvec.image_node b ON b.identifier = e.neighbour
    WHERE e.run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed_nodes(bigint) IS
    'Every edge of kNN run p_run as one bytea of 12-byte rows (identifier node, neighbour node, similarity float4; big-endian; node -1 when the image has no ccvec.image_node id yet), NULL without edges: VisualRank''s input in one value.';

CREATE FUNCTION ccvec.image_nodes_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(node) || uuid_send(identifier), ''::bytea) FROM ccvec.image_node
$$;
COMMENT ON FUNCTION ccvec.image_nodes_packed() IS
    'Every ccvec.image_node row as one bytea of 20-byte rows (node int4, identifier uuid; big-endian), NULL when empty: how VisualRank names the ranks it writes back.';

CREATE FUNCTION ccvec.visual_ranks_packed_nodes() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(n.node) || float8send(v.rank), ''::bytea)
    FROM ccvec.visual_rank v JOIN ccvec.image_node n USING (identifier)
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed_nodes() IS
    'Every stored VisualRank as one bytea of 12-byte rows (node int4, rank float8; big-endian), NULL when empty: the warm start of the next computation.';

-- ---------------------------------------------------------------- grants back

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM saved_acl LOOP
        EXECUTE format('GRANT %s ON ccvec.%I TO %s', r.privilege_type, r.relname, r.grantee);
    END LOOP;
END $$;
DROP TABLE saved_acl;

CREATE FUNCTION ccvec.score_inputs_forget() RETURNS void
LANGUAGE sql VOLATILE AS $$
    TRUNCATE ccvec.score_input, ccvec.visual_rank
$$;
COMMENT ON FUNCTION ccvec.score_inputs_forget() IS
    'Empty ccvec.score_input and ccvec.visual_rank, so the next refresh derives every input again and VisualRank starts from uniform ranks (ccvec refresh --cold). Returns nothing.';
