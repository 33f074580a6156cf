-- A report of one source among several told a user that an image was "a singleton, no other image
-- close enough" when its cluster mates had been loaded from another source: the report only counts
-- members in its scope. ccvec.report_clusters now also gives each cluster's size in the whole
-- catalog (ccvec.cluster_label.size), so the report can say "alone here, N more in other sources";
-- and where each name came from, so a name guessed from ImageNet classes is shown as a guess.

DROP FUNCTION ccvec.report_clusters(uuid[], text);

-- One row per cluster of the scope: size (in the scope), medoid, cohesion (mean similarity of
-- in-cluster edges), its label and, new, its size in the whole catalog and where its name came from,
-- all three from ccvec.cluster_label.
CREATE FUNCTION ccvec.report_clusters(p_ids uuid[] DEFAULT NULL, p_level text DEFAULT 'default')
RETURNS TABLE (cluster integer, size integer, medoid uuid, cohesion real, label text, catalog_size integer,
               label_source text)
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
           max(c.cohesion), max(l.label), max(l.size), max(l.source)
    FROM ccvec.report_cluster_members(p_ids, p_level) r
    LEFT JOIN cohesion c ON c.cluster = r.cluster
    LEFT JOIN ccvec.cluster_label l
           ON l.cluster = r.cluster
          AND l.run_id = (SELECT max(k.run_id) FROM ccvec.image_cluster k WHERE k.level = p_level)
    GROUP BY r.cluster
    ORDER BY count(*) DESC, r.cluster
$$;
COMMENT ON FUNCTION ccvec.report_clusters(uuid[], text) IS
    'Clusters of the scope at p_level by size (members in the scope): medoid, cohesion (mean in-cluster edge similarity), label (NULL: unlabelled), catalog_size, the members in the whole catalog (NULL: unlabelled), so a report of one source can tell an image alone in it from a singleton, and label_source (tags, classes or none: where the name came from, so a name guessed from ImageNet classes can say so).';

DROP FUNCTION ccvec.report_duplicates(uuid[]);

-- Members in scope of duplicate groups of two or more, canonical first, with the group's size in
-- the whole catalog: a group with one member here (a copy of an image loaded from another source)
-- is shown too, with how many members are elsewhere.
CREATE FUNCTION ccvec.report_duplicates(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (group_id uuid, identifier uuid, canonical boolean, distance integer, similarity real,
               matched_by text, group_size integer)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT d.* FROM ccvec.report_scope(p_ids) s JOIN ccvec.duplicate_member d USING (identifier)
    ),
    sizes AS (
        SELECT g.group_id, (SELECT count(*) FROM ccvec.duplicate_member d WHERE d.group_id = g.group_id)::integer AS n
        FROM (SELECT DISTINCT m.group_id FROM members m) g
    )
    SELECT m.group_id, m.identifier, m.canonical, m.distance, m.similarity, m.matched_by, z.n
    FROM members m JOIN sizes z ON z.group_id = m.group_id
    WHERE z.n > 1
    ORDER BY m.group_id, m.canonical DESC, m.distance, m.identifier
$$;
COMMENT ON FUNCTION ccvec.report_duplicates(uuid[]) IS
    'Members in the scope of near-duplicate groups of two or more (a group with one member in the scope too, when the others were loaded from other sources): each member''s pHash distance (and embedding similarity) to the canonical, and group_size, the group''s members in the whole catalog.';
