DROP VIEW IF EXISTS ccvec.reference_novelty;
DROP FUNCTION IF EXISTS ccvec.novelty_score_batch(text, uuid[]);
DROP FUNCTION IF EXISTS ccvec.reference_distance(text, uuid[]);
DROP TABLE IF EXISTS ccvec.novelty_score;
DROP TABLE IF EXISTS ccvec.novelty_reference;
DROP TABLE IF EXISTS ccvec.novelty_model;
DROP MATERIALIZED VIEW IF EXISTS ccvec.image_novelty;
DROP VIEW IF EXISTS ccvec.cluster_summary;
DROP FUNCTION IF EXISTS ccvec.label_clusters(bigint);
DROP FUNCTION IF EXISTS ccvec.inferred_tags_if_ready();
DROP TABLE IF EXISTS ccvec.cluster_label;
DROP TABLE IF EXISTS ccvec.image_class;
DROP TABLE IF EXISTS ccvec.class_name;
DELETE FROM ccvec.setting WHERE name IN ('cluster_label.min_tag_share', 'inferred_tags.min_score_tagged', 'novelty.k');
UPDATE ccvec.setting SET value = 0.3, note = 'similarity-weighted share of the neighbourhood carrying the tag'
WHERE name = 'inferred_tags.min_score';
-- the inferred-tags view as 0004 defined it
DROP MATERIALIZED VIEW IF EXISTS ccvec.inferred_tags;
CREATE MATERIALIZED VIEW ccvec.inferred_tags AS
WITH neighbourhood AS (
    SELECT identifier, sum(similarity) AS total FROM ccvec.knn_current GROUP BY identifier
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour, e.similarity, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.knn_current e
    JOIN ccvec.catalog c ON c.identifier = e.neighbour
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
scored AS (
    SELECT c.identifier, c.tag, (sum(c.similarity) / n.total)::real AS score, count(*)::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier)
    GROUP BY c.identifier, c.tag, n.total
)
SELECT s.identifier, s.tag, s.score, s.support
FROM scored s
WHERE s.support >= ccvec.setting('inferred_tags.min_support')
  AND s.score >= ccvec.setting('inferred_tags.min_score')
  AND NOT EXISTS (
      SELECT 1 FROM ccvec.catalog own
      CROSS JOIN LATERAL jsonb_array_elements(
          CASE WHEN jsonb_typeof(own.tags) = 'array' THEN own.tags ELSE '[]'::jsonb END) AS o(tag)
      WHERE own.identifier = s.identifier AND lower(btrim(o.tag ->> 'name')) = s.tag)
WITH NO DATA;
CREATE UNIQUE INDEX inferred_tags_key ON ccvec.inferred_tags (identifier, tag);
