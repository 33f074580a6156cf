-- Back to 0009's label_clusters (names computed inside it).
DROP FUNCTION ccvec.relabel_clusters(bigint);
CREATE OR REPLACE FUNCTION ccvec.label_clusters(p_run bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_knn bigint;
    v_model text;
    n integer;
BEGIN
    SELECT r.knn_run, k.model INTO v_knn, v_model
    FROM ccvec.cluster_run r JOIN ccvec.knn_run k ON k.id = r.knn_run WHERE r.id = p_run;
    DELETE FROM ccvec.cluster_label WHERE run_id = p_run;
    ANALYZE ccvec.cluster_member;  -- just written: plan the joins below with real counts
    INSERT INTO ccvec.cluster_label (run_id, cluster, size, label, source, medoid)
    WITH members AS (
        SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = p_run
    ),
    sizes AS (SELECT cluster, count(*)::integer AS size FROM members GROUP BY cluster),
    centrality AS (  -- joins on the tables (indexed, analysed), not on the CTE: hash joins at 1M
        SELECT ma.cluster, ma.identifier, sum(e.similarity) AS inner_sim
        FROM ccvec.cluster_member ma
        JOIN ccvec.knn_edge e ON e.run_id = v_knn AND e.identifier = ma.identifier
        JOIN ccvec.cluster_member mb ON mb.run_id = p_run AND mb.identifier = e.neighbour
                                    AND mb.cluster = ma.cluster
        WHERE ma.run_id = p_run
        GROUP BY ma.cluster, ma.identifier
    ),
    medoids AS (
        SELECT DISTINCT ON (cluster) cluster, identifier AS medoid
        FROM (SELECT cluster, identifier, inner_sim FROM centrality
              UNION ALL SELECT cluster, identifier, -1 FROM members) c
        ORDER BY cluster, inner_sim DESC, identifier
    ),
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
        HAVING count(*)::real / s.size >= ccvec.setting('cluster_label.min_tag_share')
    ),
    tag_labels AS (
        SELECT cluster, string_agg(tag, ' · ' ORDER BY share DESC, tag) AS label
        FROM (SELECT cluster, tag, share,
                     row_number() OVER (PARTITION BY cluster ORDER BY share DESC, tag) AS rk
              FROM tag_votes) v
        WHERE rk <= 2 GROUP BY cluster
    ),
    class_votes AS (
        SELECT m.cluster, p.class_id, sum(p.prob) AS mass
        FROM members m
        JOIN ccvec.image_class ic ON ic.model = v_model AND ic.identifier = m.identifier
        CROSS JOIN LATERAL unnest(ic.classes, ic.probs) AS p(class_id, prob)
        GROUP BY m.cluster, p.class_id
    ),
    class_labels AS (
        SELECT v.cluster, string_agg(cn.name, ' · ' ORDER BY v.mass DESC, cn.name) AS label
        FROM (SELECT cluster, class_id, mass,
                     row_number() OVER (PARTITION BY cluster ORDER BY mass DESC, class_id) AS rk
              FROM class_votes) v
        JOIN ccvec.class_name cn ON cn.model = v_model AND cn.class_id = v.class_id
        WHERE v.rk <= 2 GROUP BY v.cluster
    )
    SELECT p_run, s.cluster, s.size,
           coalesce(t.label, c.label, 'cluster ' || s.cluster),
           CASE WHEN t.label IS NOT NULL THEN 'tags' WHEN c.label IS NOT NULL THEN 'classes' ELSE 'none' END,
           md.medoid
    FROM sizes s
    JOIN medoids md USING (cluster)
    LEFT JOIN tag_labels t USING (cluster)
    LEFT JOIN class_labels c USING (cluster);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.label_clusters(bigint) IS
    'Fill ccvec.cluster_label for a cluster run: size, label (from tags, else class predictions) and medoid.';
DROP FUNCTION ccvec.cluster_names(bigint);
