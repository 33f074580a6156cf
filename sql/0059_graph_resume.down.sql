-- Restores ccvec.prunable_runs as 0040 wrote it.
CREATE OR REPLACE FUNCTION ccvec.prunable_runs(p_unfinished boolean DEFAULT false)
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

DROP FUNCTION ccvec.knn_run_claimed(bigint);
DROP FUNCTION ccvec.resumable_knn_run(text, integer, integer);
DROP FUNCTION ccvec.knn_run_release(bigint);
DROP FUNCTION ccvec.knn_run_claim(bigint);
