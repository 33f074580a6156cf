-- Back to 0018: the score views read the catalog again; no per-image inputs, no node ids.

CREATE TEMP TABLE saved_acl AS
SELECT c.relname::text AS relname, a.privilege_type,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END AS grantee
FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
WHERE c.relnamespace = 'ccvec'::regnamespace AND a.grantee <> c.relowner
  AND c.relname IN ('observed_popularity', 'popularity_source', 'neighbourhood_popularity',
                    'web_authority', 'image_score', 'cluster_mate', 'ab_outcome',
                    'ab_alternate_signal');


DROP FUNCTION ccvec.score_inputs_forget();
DROP FUNCTION ccvec.visual_ranks_packed_nodes();
DROP FUNCTION ccvec.image_nodes_packed();
DROP FUNCTION ccvec.knn_edges_packed_nodes(bigint);
DROP FUNCTION ccvec.image_node_sync(bigint);
DROP TABLE ccvec.image_node;

DROP MATERIALIZED VIEW ccvec.observed_popularity CASCADE;
DROP MATERIALIZED VIEW ccvec.web_authority CASCADE;

CREATE OR REPLACE FUNCTION ccvec.refresh_popularity_constants() RETURNS integer
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

COMMENT ON FUNCTION ccvec.refresh_popularity_constants() IS
    'Recompute every provider''s row of ccvec.popularity_metric from the catalog: the metric''s value at the percentile (discrete), the constant (NULL when the provider has no valid values), and the count of values. Returns the number of providers.';


CREATE MATERIALIZED VIEW ccvec.observed_popularity AS
SELECT c.identifier, ccvec.standardize(ccvec.metric_value(c.meta_data, m.metric), m.constant) AS popularity,
       m.metric, ccvec.metric_value(c.meta_data, m.metric) AS raw_value
FROM ccvec.catalog c
JOIN ccvec.popularity_metric m ON m.provider = c.provider
WHERE ccvec.metric_value(c.meta_data, m.metric) IS NOT NULL AND m.constant IS NOT NULL
WITH DATA;  -- empty until the constants are computed, and cheap: readers never meet an unpopulated view
CREATE UNIQUE INDEX observed_popularity_key ON ccvec.observed_popularity (identifier);

COMMENT ON MATERIALIZED VIEW ccvec.observed_popularity IS
    'Popularity from each image''s own provider metric: ccvec.standardize(raw value, provider constant), with the metric and raw value. Empty until the constants are computed (ccvec refresh).';


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

COMMENT ON MATERIALIZED VIEW ccvec.web_authority IS
    'Authority each image inherits from the web, in [0, 1]: the web-rank score of its landing page''s (else its url''s) host, else of its registered domain, else its provider''s source-class prior (0.90 cultural institution, 0.85 curated, 0.80 default, 0.75 social media); source says which.';


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

DROP FUNCTION ccvec.score_input_sync();
DROP TABLE ccvec.score_input;

DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM saved_acl LOOP
        EXECUTE format('GRANT %s ON ccvec.%I TO %s', r.privilege_type, r.relname, r.grantee);
    END LOOP;
END $$;
DROP TABLE saved_acl;
