-- Back to 0009's inferred_tags (plain similarity weights) and its threshold.

DROP MATERIALIZED VIEW ccvec.inferred_tags;
CREATE MATERIALIZED VIEW ccvec.inferred_tags AS
WITH own AS (
    SELECT c.identifier, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.catalog c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
tagged AS (SELECT DISTINCT identifier FROM own),
neighbourhood AS (
    SELECT e.identifier, sum(e.similarity) AS total
    FROM ccvec.knn_current e JOIN tagged t ON t.identifier = e.neighbour
    GROUP BY e.identifier
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour, e.similarity, o.tag
    FROM ccvec.knn_current e JOIN own o ON o.identifier = e.neighbour
),
scored AS (
    SELECT c.identifier, c.tag, (sum(c.similarity) / n.total)::real AS score, count(*)::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier)
    GROUP BY c.identifier, c.tag, n.total
)
SELECT s.identifier, s.tag, s.score, s.support,
       EXISTS (SELECT 1 FROM tagged t WHERE t.identifier = s.identifier) AS already_tagged
FROM scored s
WHERE s.support >= ccvec.setting('inferred_tags.min_support')
  AND s.score >= CASE WHEN EXISTS (SELECT 1 FROM tagged t WHERE t.identifier = s.identifier)
                      THEN ccvec.setting('inferred_tags.min_score_tagged')
                      ELSE ccvec.setting('inferred_tags.min_score') END
  AND NOT EXISTS (SELECT 1 FROM own o WHERE o.identifier = s.identifier AND o.tag = s.tag)
WITH NO DATA;
CREATE UNIQUE INDEX inferred_tags_key ON ccvec.inferred_tags (identifier, tag);
COMMENT ON MATERIALIZED VIEW ccvec.inferred_tags IS
    'Tags inferred from the kNN neighbours: score = weighted share of tagged neighbours carrying it (calibration in docs/graph.md).';

UPDATE ccvec.setting SET value = 0.5,
    note = 'similarity-weighted share of the tagged neighbours carrying the tag (precision per band: docs/graph.md)'
WHERE name = 'inferred_tags.min_score';
UPDATE ccvec.setting SET value = 0.9 WHERE name = 'inferred_tags.min_score_tagged';
DELETE FROM ccvec.setting WHERE name = 'inferred_tags.weight_power';
