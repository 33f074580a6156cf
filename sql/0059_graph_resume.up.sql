-- An interrupted `ccvec graph build` (or `ccvec run`) started a new graph: at 1M images about an
-- hour of searches was lost, and the partial run stayed until `graph prune --unfinished`. A build
-- now claims its run with a session advisory lock for as long as it works on it (released when
-- the builder's connection ends, killed or not), and the next build with the same model and k
-- resumes the newest unfinished run that nobody holds: each batch of images committed with all
-- its edges, so only the images without edges are searched again.
CREATE FUNCTION ccvec.knn_run_claim(p_run bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT pg_try_advisory_lock(hashtext('ccvec knn run'), p_run::integer)
$$;
COMMENT ON FUNCTION ccvec.knn_run_claim(bigint) IS
    'Claims kNN run p_run for this session (a session advisory lock, released by ccvec.knn_run_release or when the session ends); false when another session holds it: a build working on that run.';

CREATE FUNCTION ccvec.knn_run_release(p_run bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT pg_advisory_unlock(hashtext('ccvec knn run'), p_run::integer)
$$;
COMMENT ON FUNCTION ccvec.knn_run_release(bigint) IS
    'Releases this session''s claim on kNN run p_run (ccvec.knn_run_claim); false when it held none.';

CREATE FUNCTION ccvec.resumable_knn_run(p_model text, p_k integer, p_ef_search integer DEFAULT NULL)
RETURNS TABLE (id bigint, ef_search integer, images bigint)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r record;
BEGIN
    IF p_model IS NULL OR p_k IS NULL THEN
        RAISE EXCEPTION 'give a model and k, not NULL' USING ERRCODE = 'VC001';
    END IF;
    FOR r IN SELECT k.id, k.ef_search FROM ccvec.knn_run k
             WHERE k.model = p_model AND k.k = p_k AND k.finished_at IS NULL
               AND (p_ef_search IS NULL OR k.ef_search = p_ef_search)
             ORDER BY k.id DESC
    LOOP
        IF ccvec.knn_run_claim(r.id) THEN
            RETURN QUERY SELECT r.id, r.ef_search,
                (SELECT count(DISTINCT e.identifier) FROM ccvec.knn_edge e WHERE e.run_id = r.id);
            RETURN;
        END IF;
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.resumable_knn_run(text, integer, integer) IS
    'The newest unfinished kNN run of p_model with p_k neighbours (and p_ef_search, when given) that no other session is building, claimed for this one (ccvec.knn_run_claim), with the images that already have their edges; no row when there is none. `ccvec graph build` resumes it. Raises VC001 for a NULL model or k.';

CREATE FUNCTION ccvec.knn_run_claimed(p_run bigint) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
          AND l.classid = (hashtext('ccvec knn run')::bigint & 4294967295)::oid
          AND l.objid = p_run::oid)
$$;
COMMENT ON FUNCTION ccvec.knn_run_claimed(bigint) IS
    'Whether a session (this one included) holds kNN run p_run''s claim (ccvec.knn_run_claim): a build working on it.';

-- `graph prune --unfinished` deleted a build still running under it; it now keeps a claimed run.
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
          -- unfinished: interrupted, or a build still running (it holds its claim): the first only
          AND (k.finished_at IS NOT NULL OR (p_unfinished AND NOT ccvec.knn_run_claimed(k.id))))
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
    'The runs ccvec.prune_runs deletes, with the rows each holds (edges, cluster members): finished graph runs other than the current one and the one the newest VisualRank ran on (unfinished ones too when p_unfinished: interrupted builds, not one still running, which holds its claim), and cluster runs other than the newest of each level on the current graph.';
