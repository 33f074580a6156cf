-- Old graph and cluster runs, and `ccvec graph prune` to delete them. Every graph build keeps its
-- edges (k rows per image) and every clustering its members (a row per image), run after run, while
-- everything ccvec shows reads only the current graph, the newest cluster run of each level on it,
-- and the newest VisualRank run (`ccvec scores` explains its ranks).

CREATE FUNCTION ccvec.prunable_runs(p_unfinished boolean DEFAULT false)
RETURNS TABLE (kind text, id bigint, started_at timestamptz, rows_held bigint)
LANGUAGE sql STABLE AS $$
    WITH current AS (SELECT k.id FROM ccvec.knn_run k WHERE k.is_current),
    ranked AS (SELECT v.knn_run FROM ccvec.visualrank_run v ORDER BY v.id DESC LIMIT 1),
    shown AS (SELECT DISTINCT ON (c.level) c.id
              FROM ccvec.cluster_run c JOIN current ON current.id = c.knn_run
              ORDER BY c.level, c.id DESC),
    graphs AS (
        SELECT k.id, k.started_at FROM ccvec.knn_run k
        WHERE NOT k.is_current
          AND NOT EXISTS (SELECT 1 FROM ranked WHERE ranked.knn_run = k.id)
          -- an unfinished build may still be running (builds may overlap): only when asked
          AND (k.finished_at IS NOT NULL OR p_unfinished))
    SELECT 'graph', g.id, g.started_at, (SELECT count(*) FROM ccvec.knn_edge e WHERE e.run_id = g.id)
    FROM graphs g
    UNION ALL
    SELECT 'clusters', c.id, c.created_at,
           (SELECT count(*) FROM ccvec.cluster_member m WHERE m.run_id = c.id)
    FROM ccvec.cluster_run c
    WHERE NOT EXISTS (SELECT 1 FROM shown WHERE shown.id = c.id)
    ORDER BY 1 DESC, 2
$$;
COMMENT ON FUNCTION ccvec.prunable_runs(boolean) IS
    'The runs ccvec.prune_runs deletes, with the rows each holds (edges, cluster members): finished graph runs other than the current one and the one the newest VisualRank ran on (unfinished ones too when p_unfinished: interrupted builds, or one still running), and cluster runs other than the newest of each level on the current graph.';

CREATE FUNCTION ccvec.prune_runs(p_unfinished boolean DEFAULT false)
RETURNS TABLE (kind text, runs bigint, rows_deleted bigint)
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE pruned AS SELECT * FROM ccvec.prunable_runs(p_unfinished);
    DELETE FROM ccvec.cluster_run c USING pruned p WHERE p.kind = 'clusters' AND p.id = c.id;
    -- a graph run's edges, VisualRank runs and cluster runs go with it (ON DELETE CASCADE)
    DELETE FROM ccvec.knn_run k USING pruned p WHERE p.kind = 'graph' AND p.id = k.id;
    RETURN QUERY SELECT p.kind, count(*), coalesce(sum(p.rows_held), 0)::bigint
                 FROM pruned p GROUP BY p.kind ORDER BY p.kind DESC;
    DROP TABLE pruned;
END $$;
COMMENT ON FUNCTION ccvec.prune_runs(boolean) IS
    'Delete the runs ccvec.prunable_runs lists; returns per kind (graph, clusters) how many runs and rows (edges, cluster members) went. The space is reused by later builds (VACUUM FULL gives it back to the system). `ccvec graph prune`.';
