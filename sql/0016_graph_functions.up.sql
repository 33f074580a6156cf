-- The queries ccvec/graph.py, ccvec/cli/graph.py, ccvec/pipeline.py and ccvec/visualrank.py ran
-- as SQL text (issue 16): the same statements as functions, called with one trivial SELECT each.
-- Set-returning readers are LANGUAGE sql STABLE with a single SELECT, so the planner inlines them
-- into the caller's query (same plan as before); writers are VOLATILE.

-- ---------------------------------------------------------------- embeddings

-- ccvec.embedding_count(text) comes from 0015.

CREATE FUNCTION ccvec.embedded_images(p_model text) RETURNS TABLE (identifier uuid)
LANGUAGE sql STABLE AS $$
    SELECT identifier FROM ccvec.image_embedding WHERE model = p_model
$$;
COMMENT ON FUNCTION ccvec.embedded_images(text) IS
    'Identifiers of the images embedded by model p_model, in no order: what `ccvec graph build` gives edges, batch by batch.';

-- Session settings for building an HNSW index (as SET would: they outlive the transaction).
CREATE FUNCTION ccvec.index_build_settings(p_maintenance_work_mem text, p_max_parallel_workers integer)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    SELECT set_config('maintenance_work_mem', p_maintenance_work_mem, false);
    SELECT set_config('max_parallel_maintenance_workers', p_max_parallel_workers::text, false);
$$;
COMMENT ON FUNCTION ccvec.index_build_settings(text, integer) IS
    'Set maintenance_work_mem and max_parallel_maintenance_workers for the rest of the session (like SET), before building an HNSW index: memory and workers make the build fast. Returns nothing.';

-- ---------------------------------------------------------------- kNN runs

CREATE FUNCTION ccvec.knn_run_start(p_model text, p_k integer, p_ef_search integer) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.knn_run (model, k, ef_search) VALUES (p_model, p_k, p_ef_search) RETURNING id
$$;
COMMENT ON FUNCTION ccvec.knn_run_start(text, integer, integer) IS
    'Record a new, unfinished kNN run and return its id; its edges are added in batches (knn_insert) and knn_run_finish closes it.';

CREATE FUNCTION ccvec.knn_run_finish(p_run bigint, p_images integer, p_recall double precision,
                                     p_recall_sample integer)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.knn_run SET finished_at = now(), images = p_images, recall = p_recall,
                             recall_sample = p_recall_sample
    WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_finish(bigint, integer, double precision, integer) IS
    'Mark kNN run p_run finished now, with its image count and the measured recall@k (NULL: not measured) on p_recall_sample images. Returns nothing; does not make it current.';

CREATE FUNCTION ccvec.knn_make_current(p_run bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.knn_run SET is_current = false WHERE is_current AND id <> p_run;
    UPDATE ccvec.knn_run SET is_current = true WHERE id = p_run;
$$;
COMMENT ON FUNCTION ccvec.knn_make_current(bigint) IS
    'Make kNN run p_run the current graph (the one clusters, inferred tags and VisualRank read), the previous one no longer current. Returns nothing.';

CREATE FUNCTION ccvec.knn_run_settings(p_run bigint) RETURNS TABLE (model text, k integer)
LANGUAGE sql STABLE AS $$
    SELECT model, k FROM ccvec.knn_run WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_settings(bigint) IS
    'The model and k of kNN run p_run (no row when there is no such run): what exact search must match to measure its recall.';

CREATE FUNCTION ccvec.knn_run_images(p_run bigint) RETURNS TABLE (identifier uuid)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT identifier FROM ccvec.knn_edge WHERE run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_images(bigint) IS
    'The images that have edges in kNN run p_run, once each, in no order: the population recall is sampled from.';

CREATE FUNCTION ccvec.knn_neighbours(p_run bigint, p_identifier uuid) RETURNS TABLE (neighbour uuid)
LANGUAGE sql STABLE AS $$
    SELECT neighbour FROM ccvec.knn_edge WHERE run_id = p_run AND identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.knn_neighbours(bigint, uuid) IS
    'The neighbours kNN run p_run lists for image p_identifier, in no order: compared with exact search to measure recall.';

CREATE FUNCTION ccvec.current_knn_run()
RETURNS TABLE (id bigint, model text, k integer, images integer, recall real)
LANGUAGE sql STABLE AS $$
    SELECT id, model, k, images, recall FROM ccvec.knn_run WHERE is_current
$$;
COMMENT ON FUNCTION ccvec.current_knn_run() IS
    'The current kNN run (id, model, k, images, recall@k), or no row before the first graph is built: what is extended, clustered and scored.';

CREATE FUNCTION ccvec.knn_runs()
RETURNS TABLE (id bigint, model text, k integer, ef_search integer, images integer, recall real,
               started_at timestamptz, finished_at timestamptz, is_current boolean)
LANGUAGE sql STABLE AS $$
    SELECT id, model, k, ef_search, images, recall, started_at, finished_at, is_current
    FROM ccvec.knn_run ORDER BY id
$$;
COMMENT ON FUNCTION ccvec.knn_runs() IS
    'Every kNN run, oldest first, with its settings, size, recall, times (finished_at NULL: unfinished) and whether it is current: `ccvec graph status`.';

CREATE FUNCTION ccvec.images_missing_from_graph(p_model text, p_run bigint)
RETURNS TABLE (identifier uuid)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier FROM ccvec.image_embedding e WHERE e.model = p_model AND NOT EXISTS
    (SELECT 1 FROM ccvec.knn_edge g WHERE g.run_id = p_run AND g.identifier = e.identifier)
$$;
COMMENT ON FUNCTION ccvec.images_missing_from_graph(text, bigint) IS
    'Images embedded by p_model that have no edges in kNN run p_run, in no order: what `ccvec graph add` adds (knn_add).';

-- ---------------------------------------------------------------- clusters

CREATE FUNCTION ccvec.cluster_run_counts(p_run bigint)
RETURNS TABLE (clusters integer, singletons integer, threshold real)
LANGUAGE sql STABLE AS $$
    SELECT clusters, singletons, threshold FROM ccvec.cluster_run WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.cluster_run_counts(bigint) IS
    'Number of clusters, of singletons and the cosine threshold of cluster run p_run (no row when there is no such run).';

CREATE FUNCTION ccvec.largest_clusters(p_run bigint, p_limit integer DEFAULT 10)
RETURNS TABLE (cluster integer, size bigint)
LANGUAGE sql STABLE AS $$
    SELECT cluster, count(*) FROM ccvec.cluster_member WHERE run_id = p_run GROUP BY cluster
    ORDER BY count(*) DESC, cluster LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.largest_clusters(bigint, integer) IS
    'The p_limit largest clusters of cluster run p_run with their sizes, largest first (ties by cluster number): the summary printed after clustering.';

CREATE FUNCTION ccvec.clustered_runs() RETURNS TABLE (run_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT run_id FROM ccvec.image_cluster
$$;
COMMENT ON FUNCTION ccvec.clustered_runs() IS
    'The cluster runs that currently label images (the newest run of each level on the current graph), in no order: those renamed after a refresh.';

CREATE FUNCTION ccvec.newest_cluster_run(p_level text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_level IS NULL THEN
        RETURN (SELECT max(run_id) FROM ccvec.image_cluster);
    END IF;
    RETURN (SELECT max(run_id) FROM ccvec.image_cluster WHERE level = p_level);
END
$$;
COMMENT ON FUNCTION ccvec.newest_cluster_run(text) IS
    'The newest cluster run labelling images on the current graph, of level p_level (NULL: any level); NULL when there is none. What export-clusters and the labelling step of `ccvec run` use by default.';

CREATE FUNCTION ccvec.cluster_run_labelled(p_run bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM ccvec.cluster_label WHERE run_id = p_run LIMIT 1)
$$;
COMMENT ON FUNCTION ccvec.cluster_run_labelled(bigint) IS
    'True when cluster run p_run has labels (ccvec.label_clusters ran for it), so naming can be skipped.';

CREATE FUNCTION ccvec.default_cluster_run(p_knn_run bigint)
RETURNS TABLE (id bigint, sim real, method text, members bigint)
LANGUAGE sql STABLE AS $$
    SELECT r.id, r.sim, r.method, (SELECT count(*) FROM ccvec.cluster_member m WHERE m.run_id = r.id)
    FROM ccvec.cluster_run r WHERE r.knn_run = p_knn_run AND r.level = 'default' ORDER BY r.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION ccvec.default_cluster_run(bigint) IS
    'The newest default-level cluster run on kNN run p_knn_run (id, sim, method, labelled images), or no row: `ccvec run` reclusters unless it matches the settings and covers the graph.';

-- ---------------------------------------------------------------- `ccvec run`

CREATE FUNCTION ccvec.scope_size(p_ids uuid[]) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.report_scope(p_ids)
$$;
COMMENT ON FUNCTION ccvec.scope_size(uuid[]) IS
    'Number of loaded images among p_ids (every loaded image when NULL), duplicates counted once: the image count `ccvec run` reports.';

CREATE FUNCTION ccvec.ungrouped_images() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.image_feature f WHERE NOT EXISTS
    (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier)
$$;
COMMENT ON FUNCTION ccvec.ungrouped_images() IS
    'Number of loaded images without a near-duplicate group: `ccvec run` skips dedup when it is 0.';

CREATE FUNCTION ccvec.loaded_sources() RETURNS TABLE (source text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT source FROM ccvec.load_run ORDER BY 1
$$;
COMMENT ON FUNCTION ccvec.loaded_sources() IS
    'Every source ever loaded, once each, sorted: the sources a report of the whole database names.';

-- ---------------------------------------------------------------- VisualRank (streamed)

CREATE FUNCTION ccvec.visualrank_settings(p_damping double precision, p_tolerance double precision)
RETURNS TABLE (damping double precision, tolerance double precision, max_iterations double precision)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(p_damping, ccvec.setting('visualrank.damping')),
           coalesce(p_tolerance, ccvec.setting('visualrank.tolerance')),
           ccvec.setting('visualrank.max_iterations')
$$;
COMMENT ON FUNCTION ccvec.visualrank_settings(double precision, double precision) IS
    'Damping, tolerance and maximum iterations for VisualRank: the arguments when given, else the visualrank.* settings.';

CREATE FUNCTION ccvec.visualrank_run_start(p_knn_run bigint, p_damping double precision,
                                           p_tolerance double precision)
RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.visualrank_run (knn_run, damping, tolerance) VALUES (p_knn_run, p_damping, p_tolerance)
    RETURNING id
$$;
COMMENT ON FUNCTION ccvec.visualrank_run_start(bigint, double precision, double precision) IS
    'Record a new, unfinished VisualRank run over kNN run p_knn_run and return its id (visualrank_run_finish closes it).';

CREATE FUNCTION ccvec.visualrank_run_finish(p_run bigint, p_iterations integer, p_residual double precision,
                                            p_nodes integer)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.visualrank_run SET iterations = p_iterations, residual = p_residual, nodes = p_nodes,
                                    finished_at = now()
    WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.visualrank_run_finish(bigint, integer, double precision, integer) IS
    'Mark VisualRank run p_run finished now, with its iterations, last L1 change and number of ranked images. Returns nothing.';

-- Rows packed into one bytea: COPY TO STDOUT costs the client a Python round per row; one value
-- arrives at network speed (ccvec/visualrank.py unpacks it with numpy).
CREATE FUNCTION ccvec.knn_edges_packed(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || uuid_send(neighbour) || float4send(similarity), ''::bytea)
    FROM ccvec.knn_edge WHERE run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed(bigint) IS
    'Every edge of kNN run p_run as one bytea of 36-byte rows (identifier uuid, neighbour uuid, similarity float4; big-endian), NULL without edges: VisualRank''s input in one value.';

CREATE FUNCTION ccvec.visual_ranks_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || float8send(rank), ''::bytea) FROM ccvec.visual_rank
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed() IS
    'Every stored VisualRank as one bytea of 24-byte rows (identifier uuid, rank float8; big-endian), NULL when empty: the warm start of the next computation.';

CREATE FUNCTION ccvec.visual_rank_clear() RETURNS void
LANGUAGE sql VOLATILE AS $$
    TRUNCATE ccvec.visual_rank
$$;
COMMENT ON FUNCTION ccvec.visual_rank_clear() IS
    'Empty ccvec.visual_rank (TRUNCATE: readers wait for the commit) before new ranks are copied in. Returns nothing.';
