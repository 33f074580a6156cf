-- Back to 0022's inferred tags (untagged neighbours no evidence; no rank, ties broken alphabetically).

DELETE FROM ccvec.setting WHERE name = 'inferred_tags.untagged_power';
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
    SELECT e.identifier, sum(power(greatest(e.similarity, 0), ccvec.setting('inferred_tags.weight_power'))) AS total
    FROM ccvec.knn_current e JOIN tagged t ON t.identifier = e.neighbour
    GROUP BY e.identifier
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour,
           power(greatest(e.similarity, 0), ccvec.setting('inferred_tags.weight_power')) AS weight, o.tag
    FROM ccvec.knn_current e JOIN own o ON o.identifier = e.neighbour
),
scored AS (
    SELECT c.identifier, c.tag, (sum(c.weight) / nullif(n.total, 0))::real AS score, count(*)::integer AS support
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
    'Tags inferred from the kNN neighbours: score = share of the tagged neighbours carrying the tag, each neighbour weighted by similarity^inferred_tags.weight_power (8), so the nearest dominate; support = neighbours carrying it. Kept at score >= inferred_tags.min_score (untagged images) or inferred_tags.min_score_tagged (tagged ones), support >= inferred_tags.min_support. Precision per score band: docs/graph.md. Refreshed by ccvec refresh.';

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_of(p_identifier uuid)
RETURNS TABLE (tag text, score real, support integer)
LANGUAGE sql STABLE AS $$
    SELECT t.tag, t.score, t.support FROM ccvec.inferred_tags t WHERE t.identifier = p_identifier
    ORDER BY t.score DESC, t.tag
$$;
COMMENT ON FUNCTION ccvec.inferred_tags_of(uuid) IS
    'The tags inferred for one image, best first: tag, score, support (needs `ccvec refresh`).';

CREATE OR REPLACE FUNCTION ccvec.inferred_tags_all()
RETURNS TABLE (identifier uuid, tag text, score real, support integer, already_tagged boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.identifier, t.tag, t.score, t.support, t.already_tagged FROM ccvec.inferred_tags t
    ORDER BY t.identifier, t.score DESC, t.tag
$$;
COMMENT ON FUNCTION ccvec.inferred_tags_all() IS
    'Every inferred tag, by image then best first: the export of `ccvec tags --all` (needs `ccvec refresh`).';
