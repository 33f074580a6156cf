-- Back to 0010's ccvec.report_clusters (no catalog size).

DROP FUNCTION ccvec.report_clusters(uuid[], text);

-- One row per cluster of the scope: size, medoid, cohesion (mean similarity of in-cluster edges),
-- and its label from ccvec.cluster_label (NULL until `ccvec cluster` names it: the report shows "cluster N").
CREATE FUNCTION ccvec.report_clusters(p_ids uuid[] DEFAULT NULL, p_level text DEFAULT 'default')
RETURNS TABLE (cluster integer, size integer, medoid uuid, cohesion real, label text)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT k.identifier, k.cluster
        FROM ccvec.report_scope(p_ids) s JOIN ccvec.image_cluster k USING (identifier)
        WHERE k.level = p_level
    ),
    cohesion AS (
        SELECT m.cluster, avg(e.similarity)::real AS cohesion
        FROM members m
        JOIN ccvec.knn_current e ON e.identifier = m.identifier
        JOIN members m2 ON m2.identifier = e.neighbour AND m2.cluster = m.cluster
        GROUP BY m.cluster
    )
    SELECT r.cluster, count(*)::integer, (array_agg(r.identifier ORDER BY r.place))[1],
           max(c.cohesion), max(l.label)
    FROM ccvec.report_cluster_members(p_ids, p_level) r
    LEFT JOIN cohesion c ON c.cluster = r.cluster
    LEFT JOIN ccvec.cluster_label l
           ON l.cluster = r.cluster
          AND l.run_id = (SELECT max(k.run_id) FROM ccvec.image_cluster k WHERE k.level = p_level)
    GROUP BY r.cluster
    ORDER BY count(*) DESC, r.cluster
$$;
COMMENT ON FUNCTION ccvec.report_clusters(uuid[], text) IS
    'Clusters of the scope at p_level by size: medoid, cohesion (mean in-cluster edge similarity), label (NULL: unlabelled).';

DROP FUNCTION ccvec.report_duplicates(uuid[]);

-- Members of duplicate groups with at least two members in scope, canonical first.
CREATE FUNCTION ccvec.report_duplicates(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (group_id uuid, identifier uuid, canonical boolean, distance integer, similarity real,
               matched_by text)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT d.* FROM ccvec.report_scope(p_ids) s JOIN ccvec.duplicate_member d USING (identifier)
    )
    SELECT m.group_id, m.identifier, m.canonical, m.distance, m.similarity, m.matched_by
    FROM members m
    WHERE m.group_id IN (SELECT g.group_id FROM members g GROUP BY g.group_id HAVING count(*) > 1)
    ORDER BY m.group_id, m.canonical DESC, m.distance, m.identifier
$$;
COMMENT ON FUNCTION ccvec.report_duplicates(uuid[]) IS
    'Near-duplicate groups with two or more members in the scope: each member''s pHash distance (and embedding similarity) to the canonical.';
