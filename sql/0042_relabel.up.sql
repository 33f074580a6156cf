-- Cluster names refreshed without their medoids. `ccvec refresh` named every cluster run again
-- because names read the inferred tags, and ccvec.label_clusters also recomputed each cluster's
-- medoid: a join of every member's graph edges (10M at 1M images) on every refresh. Medoids are
-- now computed when the graph is clustered (ccvec graph add may move older images' edges
-- meanwhile; ccvec run clusters again whenever images were added). The names now come
-- from one function, ccvec.cluster_names, which label_clusters (at clustering time: sizes,
-- medoids, names) and relabel_clusters (at refresh: names only) both use.

CREATE FUNCTION ccvec.cluster_names(p_run bigint)
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

CREATE OR REPLACE FUNCTION ccvec.label_clusters(p_run bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_knn bigint;
    n integer;
BEGIN
    SELECT r.knn_run INTO v_knn FROM ccvec.cluster_run r WHERE r.id = p_run;
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
    )
    SELECT p_run, s.cluster, s.size, nm.label, nm.source, md.medoid
    FROM sizes s
    JOIN medoids md USING (cluster)
    JOIN ccvec.cluster_names(p_run) nm USING (cluster);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE FUNCTION ccvec.relabel_clusters(p_run bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ccvec.cluster_label WHERE run_id = p_run) THEN
        RETURN ccvec.label_clusters(p_run);  -- never labelled: sizes and medoids too
    END IF;
    UPDATE ccvec.cluster_label l SET label = nm.label, source = nm.source
    FROM ccvec.cluster_names(p_run) nm
    WHERE l.run_id = p_run AND l.cluster = nm.cluster
      AND (l.label, l.source) IS DISTINCT FROM (nm.label, nm.source);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.relabel_clusters(bigint) IS
    'Name the clusters of run p_run again (ccvec.cluster_names: tags and classes may have changed), keeping their sizes and the medoids computed when the run was labelled; a run never labelled is labelled in full (ccvec.label_clusters). Returns how many names changed, or how many clusters were labelled. ccvec refresh runs it.';
