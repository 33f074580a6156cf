-- The queries of ccvec/clusters.py, ccvec/cli/clusters.py, ccvec/export.py and ccvec/report.py's
-- level lookup, moved out of Python unchanged: class predictions, the Louvain clustering's plumbing,
-- cluster labels and shapes, inferred tags, novelty against a reference set, and folder export.
-- Reads are LANGUAGE sql STABLE (inlined into the caller's query, so a server-side cursor still
-- streams); writes are VOLATILE.

-- ---------------------------------------------------------------- class predictions

CREATE FUNCTION ccvec.class_names_add(p_model text, p_names text[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO ccvec.class_name (model, class_id, name) SELECT p_model, i - 1, n
    FROM unnest(p_names) WITH ORDINALITY AS t(n, i) ON CONFLICT DO NOTHING
$$;
COMMENT ON FUNCTION ccvec.class_names_add(text, text[]) IS
    'Store a model''s class names (class id = position - 1) unless already there; returns nothing.';

CREATE FUNCTION ccvec.unclassified_embeddings(p_model text, p_limit bigint)
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding FROM ccvec.image_embedding e WHERE e.model = p_model AND NOT EXISTS
    (SELECT 1 FROM ccvec.image_class c WHERE c.model = e.model AND c.identifier = e.identifier)
    LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.unclassified_embeddings(text, bigint) IS
    'Up to p_limit (identifier, embedding) of the model without top classes yet: the next batch to classify.';

-- ---------------------------------------------------------------- the default clustering (Louvain)

CREATE FUNCTION ccvec.louvain_run(p_knn_run bigint, p_params jsonb, p_level text) RETURNS bigint
LANGUAGE sql AS $$
    INSERT INTO ccvec.cluster_run (knn_run, method, sim, threshold, params, level)
    VALUES (p_knn_run, 'louvain', 0, 0, p_params, p_level) RETURNING id
$$;
COMMENT ON FUNCTION ccvec.louvain_run(bigint, jsonb, text) IS
    'Create a Louvain cluster run on a kNN run at a level; returns its id (labels come from ccvec/clusters.py).';

CREATE FUNCTION ccvec.louvain_nodes(p_knn_run bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ccvec.cluster_nodes(p_knn_run, false);
    RETURN (SELECT count(*) FROM cl_node);
END $$;
COMMENT ON FUNCTION ccvec.louvain_nodes(bigint) IS
    'Make the temp table cl_node of a kNN run''s nodes (ids 1..n) and return n, the size of the Louvain graph.';

-- cl_node is a temp table that ccvec.cluster_nodes creates per transaction: the body can only be
-- checked when called.
SET check_function_bodies = off;
CREATE FUNCTION ccvec.louvain_edges(p_knn_run bigint) RETURNS TABLE (a integer, b integer, w real)
LANGUAGE sql STABLE AS $$
    SELECT na.id - 1, nb.id - 1, greatest(e.similarity, 0) FROM ccvec.knn_edge e
    JOIN cl_node na ON na.node = e.identifier JOIN cl_node nb ON nb.node = e.neighbour
    WHERE e.run_id = p_knn_run
$$;
RESET check_function_bodies;
COMMENT ON FUNCTION ccvec.louvain_edges(bigint) IS
    'The kNN run''s edges over cl_node''s 0-based ids, weight = similarity clipped at 0: the graph Louvain reads (streamed).';

CREATE FUNCTION ccvec.louvain_label_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE cl_louvain (id integer, label integer) ON COMMIT DROP;
END $$;
COMMENT ON FUNCTION ccvec.louvain_label_table() IS
    'Create the temp table cl_louvain (id, label) that the client COPYs Louvain''s labels into.';

CREATE FUNCTION ccvec.louvain_save(p_run bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cl_node n SET label = l.label FROM cl_louvain l WHERE n.id = l.id;
    DROP TABLE cl_louvain;
    PERFORM ccvec.cluster_save(p_run, '{}'::jsonb);
END $$;
COMMENT ON FUNCTION ccvec.louvain_save(bigint) IS
    'Copy cl_louvain''s labels onto cl_node and store them as the run''s clusters (ccvec.cluster_save); returns nothing.';

-- ---------------------------------------------------------------- labels and shapes of runs

CREATE FUNCTION ccvec.cluster_run_model(p_run bigint) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT k.model FROM ccvec.cluster_run r JOIN ccvec.knn_run k ON k.id = r.knn_run
    WHERE r.id = p_run
$$;
COMMENT ON FUNCTION ccvec.cluster_run_model(bigint) IS
    'The embedding model a cluster run''s graph was built from; no row for an unknown run.';

CREATE FUNCTION ccvec.cluster_run_shape(p_run bigint)
RETURNS TABLE (clusters bigint, singletons bigint, images numeric, largest bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*), count(*) FILTER (WHERE n = 1), coalesce(sum(n), 0), coalesce(max(n), 0)
    FROM (SELECT count(*) AS n FROM ccvec.cluster_member WHERE run_id = p_run GROUP BY cluster) s
$$;
COMMENT ON FUNCTION ccvec.cluster_run_shape(bigint) IS
    'One row: clusters, singleton clusters, images and the largest cluster''s size of a run (zeros when empty).';

CREATE FUNCTION ccvec.newest_labelled_cluster_run() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT max(run_id) FROM ccvec.cluster_summary
$$;
COMMENT ON FUNCTION ccvec.newest_labelled_cluster_run() IS
    'The newest current labelled cluster run (the default of `ccvec clusters`); NULL when none.';

CREATE FUNCTION ccvec.cluster_run_labels(p_run bigint)
RETURNS TABLE (cluster integer, label text, size integer, medoid uuid, source text)
LANGUAGE sql STABLE AS $$
    SELECT l.cluster, l.label, l.size, l.medoid, l.source FROM ccvec.cluster_label l WHERE l.run_id = p_run
    ORDER BY l.size DESC, l.cluster
$$;
COMMENT ON FUNCTION ccvec.cluster_run_labels(bigint) IS
    'A run''s clusters, largest first: label, size, medoid and where the label came from.';

CREATE FUNCTION ccvec.cluster_levels() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT level FROM ccvec.image_cluster ORDER BY 1
$$;
COMMENT ON FUNCTION ccvec.cluster_levels() IS
    'The levels that have current cluster labels, sorted: the report picks one.';

-- ---------------------------------------------------------------- inferred tags

CREATE FUNCTION ccvec.catalog_tags(p_identifier uuid) RETURNS SETOF jsonb
LANGUAGE sql STABLE AS $$
    SELECT tags FROM ccvec.catalog WHERE identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.catalog_tags(uuid) IS
    'An image''s own catalog tags (jsonb, may be NULL); no row when the image is not in the catalog.';

CREATE FUNCTION ccvec.inferred_tags_of(p_identifier uuid)
RETURNS TABLE (tag text, score real, support integer)
LANGUAGE sql STABLE AS $$
    SELECT t.tag, t.score, t.support FROM ccvec.inferred_tags t WHERE t.identifier = p_identifier
    ORDER BY t.score DESC, t.tag
$$;
COMMENT ON FUNCTION ccvec.inferred_tags_of(uuid) IS
    'The tags inferred for one image, best first: tag, score, support (needs `ccvec refresh`).';

CREATE FUNCTION ccvec.inferred_tags_all()
RETURNS TABLE (identifier uuid, tag text, score real, support integer, already_tagged boolean)
LANGUAGE sql STABLE AS $$
    SELECT t.identifier, t.tag, t.score, t.support, t.already_tagged FROM ccvec.inferred_tags t
    ORDER BY t.identifier, t.score DESC, t.tag
$$;
COMMENT ON FUNCTION ccvec.inferred_tags_all() IS
    'Every inferred tag, by image then best first: the export of `ccvec tags --all` (needs `ccvec refresh`).';

-- ---------------------------------------------------------------- novelty against a reference set

CREATE FUNCTION ccvec.novelty_reference_set(p_name text, p_model text, p_reference text,
                                            p_where text, p_value text)
RETURNS SETOF uuid
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM ccvec.novelty_model WHERE name = p_name;
    INSERT INTO ccvec.novelty_model (name, model, reference, k)
    VALUES (p_name, p_model, p_reference, trunc(ccvec.setting('novelty.k'))::integer);
    IF p_where = 'source' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT identifier FROM ccvec.catalog WHERE source = p_value
            UNION SELECT i.identifier FROM ccvec.image i WHERE i.meta_data ->> 'source' = p_value) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    ELSIF p_where = 'provider' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT identifier FROM ccvec.catalog WHERE provider = p_value) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    ELSIF p_where = 'tag' THEN
        INSERT INTO ccvec.novelty_reference (name, identifier)
        SELECT p_name, m.identifier FROM (
            SELECT c.identifier FROM ccvec.catalog c, jsonb_array_elements(CASE WHEN
            jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]' END) t
            WHERE lower(t ->> 'name') = lower(p_value)) m
        JOIN ccvec.image_embedding e ON e.identifier = m.identifier AND e.model = p_model;
    END IF;
    RETURN QUERY SELECT r.identifier FROM ccvec.novelty_reference r WHERE r.name = p_name;
END $$;
COMMENT ON FUNCTION ccvec.novelty_reference_set(text, text, text, text, text) IS
    '(Re)create novelty model p_name with k = setting novelty.k and its reference set: the embedded '
    'images whose p_where (source, provider or tag) is p_value. Returns the members'' identifiers.';

CREATE FUNCTION ccvec.novelty_reference_distances(p_name text, p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_reference r SET distance = d.distance
    FROM ccvec.reference_distance(p_name, p_ids) d WHERE r.name = p_name AND r.identifier = d.identifier
$$;
COMMENT ON FUNCTION ccvec.novelty_reference_distances(text, uuid[]) IS
    'Store the leave-one-out distance of these reference members to the rest of their set; returns nothing.';

CREATE FUNCTION ccvec.novelty_model_of(p_name text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT model FROM ccvec.novelty_model WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_model_of(text) IS
    'The embedding model of a fitted reference set; no row when there is no such set.';

CREATE FUNCTION ccvec.novelty_candidates(p_model text, p_name text) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT e.identifier FROM ccvec.image_embedding e WHERE e.model = p_model AND NOT EXISTS
    (SELECT 1 FROM ccvec.novelty_reference r WHERE r.name = p_name AND r.identifier = e.identifier)
$$;
COMMENT ON FUNCTION ccvec.novelty_candidates(text, text) IS
    'The images of the model outside reference set p_name: those `ccvec novelty score` scores.';

CREATE FUNCTION ccvec.novelty_scored(p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model SET scored_at = now() WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_scored(text) IS
    'Record that reference set p_name has just been scored (novelty_model.scored_at); returns nothing.';

CREATE FUNCTION ccvec.novelty_model_names() RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT name FROM ccvec.novelty_model ORDER BY name
$$;
COMMENT ON FUNCTION ccvec.novelty_model_names() IS
    'The names of every fitted reference set, sorted: those `ccvec refresh` rescores.';

CREATE FUNCTION ccvec.reference_novelty_top(p_name text, p_limit bigint)
RETURNS TABLE (identifier uuid, novelty real, title text)
LANGUAGE sql STABLE AS $$
    SELECT s.identifier, s.novelty, c.title FROM ccvec.reference_novelty s
    LEFT JOIN ccvec.catalog c USING (identifier) WHERE s.name = p_name
    ORDER BY s.novelty, s.distance LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.reference_novelty_top(text, bigint) IS
    'The p_limit images that fit reference set p_name best (lowest novelty): identifier, novelty, title.';

-- ---------------------------------------------------------------- export to folders

CREATE FUNCTION ccvec.export_cluster_files(p_run bigint, p_min_size bigint)
RETURNS TABLE (cluster integer, url text, title text, content_sha256 bytea)
LANGUAGE sql STABLE AS $$
    SELECT m.cluster, c.url, coalesce(c.title, ''), f.content_sha256 FROM ccvec.cluster_member m
    JOIN ccvec.catalog c ON c.identifier = m.identifier
    JOIN ccvec.image_feature f ON f.identifier = m.identifier
    WHERE m.run_id = p_run AND m.cluster IN (SELECT cluster FROM ccvec.cluster_member
      WHERE run_id = p_run GROUP BY cluster HAVING count(*) >= p_min_size)
    ORDER BY m.cluster, c.url
$$;
COMMENT ON FUNCTION ccvec.export_cluster_files(bigint, bigint) IS
    'Members of a run''s clusters of at least p_min_size images: cluster, catalog URL, title, content '
    'sha256 (the export re-checks the file against it).';

CREATE FUNCTION ccvec.export_cluster_labels(p_run bigint)
RETURNS TABLE (cluster integer, label text, url text)
LANGUAGE sql STABLE AS $$
    SELECT l.cluster, l.label, c.url FROM ccvec.cluster_label l
    LEFT JOIN ccvec.catalog c ON c.identifier = l.medoid WHERE l.run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.export_cluster_labels(bigint) IS
    'Per cluster of a run: its label and its medoid''s catalog URL (the export names the medoid file).';
