-- Restores ccvec.cluster_names as 0042 wrote it.
CREATE OR REPLACE FUNCTION ccvec.cluster_names(p_run bigint)
RETURNS TABLE (cluster integer, label text, source text)
LANGUAGE sql STABLE AS $$
    WITH members AS (
        SELECT m.identifier, m.cluster FROM ccvec.cluster_member m WHERE m.run_id = p_run
    ),
    run AS (
        SELECT k.model FROM ccvec.cluster_run r JOIN ccvec.knn_run k ON k.id = r.knn_run WHERE r.id = p_run
    ),
    sizes AS (SELECT m.cluster, count(*)::integer AS size FROM members m GROUP BY m.cluster),
    image_tags AS (
        SELECT DISTINCT m.cluster, m.identifier, lower(btrim(t.tag ->> 'name')) AS tag
        FROM members m
        JOIN ccvec.catalog c ON c.identifier = m.identifier
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
        WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
        UNION
        SELECT m.cluster, m.identifier, i.tag FROM members m JOIN ccvec.inferred_tags_if_ready() i USING (identifier)
    ),
    tag_votes AS (
        SELECT t.cluster, t.tag, count(*)::real / s.size AS share
        FROM image_tags t JOIN sizes s USING (cluster)
        GROUP BY t.cluster, t.tag, s.size
        HAVING count(*)::real / s.size >= (SELECT ccvec.setting('cluster_label.min_tag_share'))
    ),
    tag_labels AS (
        SELECT v.cluster, string_agg(v.tag, ' · ' ORDER BY v.share DESC, v.tag) AS label
        FROM (SELECT tv.cluster, tv.tag, tv.share,
                     row_number() OVER (PARTITION BY tv.cluster ORDER BY tv.share DESC, tv.tag) AS rk
              FROM tag_votes tv) v
        WHERE v.rk <= 2 GROUP BY v.cluster
    ),
    class_votes AS (
        SELECT m.cluster, p.class_id, sum(p.prob) AS mass
        FROM members m
        JOIN ccvec.image_class ic ON ic.model = (SELECT run.model FROM run) AND ic.identifier = m.identifier
        CROSS JOIN LATERAL unnest(ic.classes, ic.probs) AS p(class_id, prob)
        GROUP BY m.cluster, p.class_id
    ),
    class_labels AS (
        SELECT v.cluster, string_agg(cn.name, ' · ' ORDER BY v.mass DESC, cn.name) AS label
        FROM (SELECT cv.cluster, cv.class_id, cv.mass,
                     row_number() OVER (PARTITION BY cv.cluster ORDER BY cv.mass DESC, cv.class_id) AS rk
              FROM class_votes cv) v
        JOIN ccvec.class_name cn ON cn.model = (SELECT run.model FROM run) AND cn.class_id = v.class_id
        WHERE v.rk <= 2 GROUP BY v.cluster
    )
    SELECT s.cluster, coalesce(t.label, c.label, 'cluster ' || s.cluster),
           CASE WHEN t.label IS NOT NULL THEN 'tags' WHEN c.label IS NOT NULL THEN 'classes' ELSE 'none' END
    FROM sizes s
    LEFT JOIN tag_labels t USING (cluster)
    LEFT JOIN class_labels c USING (cluster)
$$;
COMMENT ON FUNCTION ccvec.cluster_names(bigint) IS
    'The name of every cluster of run p_run and where it comes from: the two tags (provider and inferred) most of its members carry, at least cluster_label.min_tag_share of them (source ''tags''), else its two heaviest ImageNet classes (''classes''), else ''cluster N'' (''none'').';

DROP FUNCTION ccvec.imagenet_group(integer);
DELETE FROM ccvec.setting WHERE name = 'cluster_label.min_class_share';
