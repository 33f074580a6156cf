-- The bodies and comments of 0066.

CREATE OR REPLACE FUNCTION ccvec.knn_adjacency_begin(p_wait boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    -- the edges' writers first, then the other writer of an adjacency (readers go on)
    IF p_wait THEN
        LOCK TABLE ccvec.knn_edge IN SHARE MODE;
        LOCK TABLE ccvec.knn_adjacency IN EXCLUSIVE MODE;
    ELSE
        BEGIN
            LOCK TABLE ccvec.knn_edge IN SHARE MODE NOWAIT;
            LOCK TABLE ccvec.knn_adjacency IN EXCLUSIVE MODE NOWAIT;
        EXCEPTION WHEN lock_not_available THEN
            RETURN NULL;
        END;
    END IF;
    DELETE FROM ccvec.knn_adjacency;  -- only the current run's is read: one at a time
    RETURN ccvec.knn_edge_changes();
END $$;
COMMENT ON FUNCTION ccvec.knn_adjacency_begin(boolean) IS
    'Starts storing a kNN run''s adjacency in the caller''s transaction: a SHARE lock on ccvec.knn_edge and an EXCLUSIVE one on ccvec.knn_adjacency until the commit (writers in flight commit first, new ones wait, readers go on; with p_wait false, NULL at once when another session holds either), every stored adjacency deleted, and the ccvec.knn_edge_change value the caller''s next reads of the edges reflect, which its parts are to carry (ccvec.knn_adjacency_put).';

CREATE OR REPLACE FUNCTION ccvec.knn_adjacency_current(p_run bigint)
RETURNS TABLE (first_node bigint, ids bytea, degrees bytea, targets bytea, weights bytea)
LANGUAGE sql STABLE AS $$
    SELECT a.first_node, a.ids, a.degrees, a.targets, a.weights
    FROM ccvec.knn_adjacency a
    WHERE a.run_id = p_run AND a.edge_change = ccvec.knn_edge_changes()
    ORDER BY a.first_node
$$;
COMMENT ON FUNCTION ccvec.knn_adjacency_current(bigint) IS
    'The parts of kNN run p_run''s stored adjacency in node order, when it is still current (made at the last ccvec.knn_edge_change value drawn); no rows otherwise.';
