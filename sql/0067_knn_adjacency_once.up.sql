-- Review of 0066. Two ways a refresh could rank with an adjacency that was not the run's edges:
-- * ccvec.knn_adjacency_current compared each part's edge_change with ccvec.knn_edge_changes() part
--   by part (a volatile call in the filter): a change drawn while the parts were read left the later
--   parts out, and VisualRank got nodes without the edges pointing past them (an error from scipy).
--   The value is now read once per call (an InitPlan), so the parts are all current or none is.
-- * ccvec.knn_adjacency_begin returned the value after its lock, but outside READ COMMITTED (a
--   server or role whose default_transaction_isolation is repeatable read or serializable) the
--   caller's reads of the edges use the transaction's snapshot, taken at its first statement, before
--   the lock: edges committed in between were missing from an adjacency marked current until the
--   next change. It now returns NULL there (nothing stored; VisualRank reads the edges each time).

CREATE OR REPLACE FUNCTION ccvec.knn_adjacency_begin(p_wait boolean DEFAULT true) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN NULL;  -- the snapshot the edges would be read in may predate the lock
    END IF;
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
    'Starts storing a kNN run''s adjacency in the caller''s transaction: a SHARE lock on ccvec.knn_edge and an EXCLUSIVE one on ccvec.knn_adjacency until the commit (writers in flight commit first, new ones wait, readers go on; with p_wait false, NULL at once when another session holds either), every stored adjacency deleted, and the ccvec.knn_edge_change value the caller''s next reads of the edges reflect, which its parts are to carry (ccvec.knn_adjacency_put). NULL, and nothing locked, outside READ COMMITTED: the edges would be read in a snapshot older than the lock.';

CREATE OR REPLACE FUNCTION ccvec.knn_adjacency_current(p_run bigint)
RETURNS TABLE (first_node bigint, ids bytea, degrees bytea, targets bytea, weights bytea)
LANGUAGE sql STABLE AS $$
    SELECT a.first_node, a.ids, a.degrees, a.targets, a.weights
    FROM ccvec.knn_adjacency a
    WHERE a.run_id = p_run AND a.edge_change = (SELECT ccvec.knn_edge_changes())
    ORDER BY a.first_node
$$;
COMMENT ON FUNCTION ccvec.knn_adjacency_current(bigint) IS
    'The parts of kNN run p_run''s stored adjacency in node order, when it is still current (made at the last ccvec.knn_edge_change value drawn, read once for all parts); no rows otherwise.';
