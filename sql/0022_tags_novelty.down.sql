-- Back to 0009's reference novelty (plain mean kNN distance) and inferred tags.

CREATE OR REPLACE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    INSERT INTO ccvec.novelty_score (name, identifier, distance, novelty)
    SELECT p_name, d.identifier, d.distance,
           (SELECT count(*) FILTER (WHERE r.distance < d.distance)::real / greatest(count(*), 1)
            FROM ccvec.novelty_reference r WHERE r.name = p_name)
    FROM ccvec.reference_distance(p_name, p_ids) d
    ON CONFLICT (name, identifier) DO UPDATE SET distance = excluded.distance, novelty = excluded.novelty;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[]) IS
    'Score images against a fitted reference set (see ccvec.novelty_score).';

DROP VIEW ccvec.reference_novelty;
CREATE VIEW ccvec.reference_novelty AS
SELECT s.name, s.identifier, s.distance, s.novelty, m.reference
FROM ccvec.novelty_score s JOIN ccvec.novelty_model m USING (name)
WHERE NOT EXISTS (SELECT 1 FROM ccvec.novelty_reference r WHERE r.name = s.name AND r.identifier = s.identifier);
COMMENT ON VIEW ccvec.reference_novelty IS
    'Per reference set and image outside it: distance to the set and novelty in [0,1] (percentile against the set''s own members).';
DROP FUNCTION ccvec.novelty_reference_scores(text, uuid[]);
DROP FUNCTION ccvec.reference_neighbourhood(text, uuid[]);
DROP FUNCTION ccvec.density_score(real, real);
ALTER TABLE ccvec.novelty_score DROP COLUMN score;
ALTER TABLE ccvec.novelty_reference DROP COLUMN score;

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
