-- Back to the definitions of migrations 0033 (inferred_tags) and 0020 (the others).

SELECT ccvec.matview_replace('inferred_tags', $view$
WITH own AS (
    SELECT c.identifier, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.catalog c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
tagged AS (SELECT DISTINCT identifier FROM own),
frequency AS (SELECT tag, count(DISTINCT identifier) AS images FROM own GROUP BY tag),
edges AS (
    SELECT e.identifier, e.neighbour,
           power(greatest(e.similarity, 0), ccvec.setting('inferred_tags.weight_power')) AS weight,
           t.identifier IS NOT NULL AS neighbour_tagged
    FROM ccvec.knn_current e LEFT JOIN tagged t ON t.identifier = e.neighbour
),
neighbourhood AS (
    SELECT n.identifier, n.tagged_weight, n.untagged_weight, t.identifier IS NOT NULL AS is_tagged
    FROM (SELECT identifier,
                 sum(weight) FILTER (WHERE neighbour_tagged) AS tagged_weight,
                 coalesce(sum(weight) FILTER (WHERE NOT neighbour_tagged), 0) AS untagged_weight
          FROM edges GROUP BY identifier) n
    LEFT JOIN tagged t USING (identifier)
),
untagged AS (  -- u^p, as exp(p ln u) kept above float8's underflow for a large p
    SELECT coalesce(exp(greatest(
               ln(nullif(avg((NOT is_tagged)::integer)::float8, 0)) * ccvec.setting('inferred_tags.untagged_power'),
               -700)), 0) AS weight
    FROM neighbourhood
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour, e.weight, o.tag
    FROM edges e JOIN own o ON o.identifier = e.neighbour
),
scored AS (
    SELECT c.identifier, c.tag, n.is_tagged,
           (sum(c.weight) / nullif(n.tagged_weight + u.weight * n.untagged_weight, 0))::real AS score,
           count(*)::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier) CROSS JOIN untagged u
    GROUP BY c.identifier, c.tag, n.is_tagged, n.tagged_weight, n.untagged_weight, u.weight
)
SELECT s.identifier, s.tag, s.score, s.support, s.is_tagged AS already_tagged,
       row_number() OVER (PARTITION BY s.identifier ORDER BY s.score DESC, f.images DESC, s.tag)::integer AS rank
FROM scored s JOIN frequency f USING (tag)
WHERE s.support >= ccvec.setting('inferred_tags.min_support')
  AND s.score >= CASE WHEN s.is_tagged THEN ccvec.setting('inferred_tags.min_score_tagged')
                      ELSE ccvec.setting('inferred_tags.min_score') END
  AND NOT EXISTS (SELECT 1 FROM own o WHERE o.identifier = s.identifier AND o.tag = s.tag)
$view$);

SELECT ccvec.matview_replace('neighbourhood_popularity', $view$
SELECT e.identifier,
       (sum(e.similarity * c.popularity) / sum(e.similarity))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= ccvec.setting('neighbourhood_popularity.min_support') AND sum(e.similarity) > 0
$view$);

SELECT ccvec.matview_replace('image_score', $view$
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
$view$);

SELECT ccvec.matview_replace('cluster_mate', $view$
SELECT c.level, c.cluster, c.identifier,
       row_number() OVER (PARTITION BY c.level, c.cluster
                          ORDER BY coalesce(s.popularity, 0) + coalesce(s.authority, 0) DESC, c.identifier) AS position
FROM ccvec.image_cluster c
LEFT JOIN ccvec.image_score s ON s.identifier = c.identifier
$view$);

DROP MATERIALIZED VIEW ccvec.cluster_mate_retired, ccvec.image_score_retired,
    ccvec.neighbourhood_popularity_retired, ccvec.inferred_tags_retired;

DROP FUNCTION ccvec.matview_replace(text, text);
