-- VisualRank's input stored once per graph (issue 17, item 2). Every refresh read the current run's
-- 10M edges out of knn_edge as UUID pairs (2.3-2.8 s of server packing at 1M images) and mapped them
-- to positions in the client (2.3 s) before one 0.5 s power iteration. The graph's writers (ccvec
-- graph build, graph add) now store the run's adjacency once, as positions: node UUIDs in key order,
-- each node's out-degree, and per edge the neighbour's position and the similarity, in parts of at
-- most a few million edges (so no value nears the 1 GB bytea limit). A refresh reads about 100 MB
-- at 1M images instead of packing 360 MB, and maps nothing.
--
-- From the review: the parts are compared with one edge-change value read once per call (compared
-- part by part, a change drawn mid-read left the later parts out), and nothing is stored outside
-- READ COMMITTED (the edges would be read in the transaction's snapshot, older than the lock).
--
-- The stored form is valid only while no statement has changed knn_edge since it was made: every
-- INSERT, UPDATE, DELETE or TRUNCATE of knn_edge draws from ccvec.knn_edge_change (a statement
-- trigger: no row lock, concurrent graph batches do not wait), and an adjacency records the value
-- it was made at, after a SHARE lock on knn_edge let the writers in flight commit. A refresh uses it
-- only when that value is still the last one drawn; otherwise it reads the edges as before, and
-- stores the adjacency anew when it can lock knn_edge at once.

CREATE SEQUENCE ccvec.knn_edge_change;
COMMENT ON SEQUENCE ccvec.knn_edge_change IS
    'Drawn by every statement that changes ccvec.knn_edge (trigger knn_edge_change): a stored ccvec.knn_adjacency is valid while it was made at the last value drawn.';

-- SECURITY DEFINER (as ccvec.note_input_change): a role granted before this migration writes and
-- reads edges without a grant on the new sequence.
CREATE FUNCTION ccvec.knn_edge_change_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    PERFORM nextval('ccvec.knn_edge_change');
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ccvec.knn_edge_change_trigger() IS
    'Statement trigger of ccvec.knn_edge: draws the next ccvec.knn_edge_change value, so every stored ccvec.knn_adjacency made before is no longer current.';

CREATE TRIGGER knn_edge_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.knn_edge
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.knn_edge_change_trigger();

CREATE FUNCTION ccvec.knn_edge_changes() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ccvec.knn_edge_change
$$;
COMMENT ON FUNCTION ccvec.knn_edge_changes() IS
    'The last ccvec.knn_edge_change value drawn by any session (0 before the first change of ccvec.knn_edge).';

CREATE TABLE ccvec.knn_adjacency (
    run_id      bigint NOT NULL REFERENCES ccvec.knn_run (id) ON DELETE CASCADE,
    first_node  bigint NOT NULL CHECK (first_node >= 0),
    edge_change bigint NOT NULL,
    ids         bytea NOT NULL,
    degrees     bytea NOT NULL,
    targets     bytea NOT NULL,
    weights     bytea NOT NULL,
    PRIMARY KEY (run_id, first_node)
);
SELECT ccvec.copy_grants('ccvec.knn_edge', 'ccvec.knn_adjacency');  -- roles granted before
-- random positions and floats do not compress: store them out of line as they are
ALTER TABLE ccvec.knn_adjacency ALTER ids SET STORAGE EXTERNAL, ALTER degrees SET STORAGE EXTERNAL,
    ALTER targets SET STORAGE EXTERNAL, ALTER weights SET STORAGE EXTERNAL;
COMMENT ON TABLE ccvec.knn_adjacency IS
    'A kNN run''s edges by position, for VisualRank: its nodes (every image with an edge or listed as a neighbour) numbered in identifier order; a part holds the nodes from first_node on: ids (16-byte UUIDs), degrees (int32 out-degree each), then their edges in node order as targets (int32 neighbour position) and weights (float32 similarity); the numbers little-endian, the UUIDs as stored (uuid_send). Valid while edge_change is ccvec.knn_edge_changes(); written by the graph''s writers and by a refresh that found it stale (ccvec/visualrank.py).';

CREATE FUNCTION ccvec.knn_adjacency_begin(p_wait boolean DEFAULT true) RETURNS bigint
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

CREATE FUNCTION ccvec.knn_adjacency_put(
    p_run bigint, p_first_node bigint, p_edge_change bigint,
    p_ids bytea, p_degrees bytea, p_targets bytea, p_weights bytea
) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF length(p_ids) % 16 <> 0 OR length(p_degrees) <> length(p_ids) / 4
       OR length(p_targets) <> length(p_weights) OR length(p_targets) % 4 <> 0 THEN
        RAISE EXCEPTION 'adjacency part of kNN run % at node % has inconsistent lengths', p_run, p_first_node
            USING ERRCODE = 'VC001';
    END IF;
    INSERT INTO ccvec.knn_adjacency (run_id, first_node, edge_change, ids, degrees, targets, weights)
    VALUES (p_run, p_first_node, p_edge_change, p_ids, p_degrees, p_targets, p_weights);
END $$;
COMMENT ON FUNCTION ccvec.knn_adjacency_put(bigint, bigint, bigint, bytea, bytea, bytea, bytea) IS
    'Stores one part of kNN run p_run''s adjacency (ccvec.knn_adjacency), made at ccvec.knn_edge_change value p_edge_change (from ccvec.knn_adjacency_begin). Raises VC001 when the lengths disagree (16 bytes of id and 4 of degree per node, 4 of target and 4 of weight per edge).';

CREATE FUNCTION ccvec.knn_adjacency_current(p_run bigint)
RETURNS TABLE (first_node bigint, ids bytea, degrees bytea, targets bytea, weights bytea)
LANGUAGE sql STABLE AS $$
    SELECT a.first_node, a.ids, a.degrees, a.targets, a.weights
    FROM ccvec.knn_adjacency a
    WHERE a.run_id = p_run AND a.edge_change = (SELECT ccvec.knn_edge_changes())
    ORDER BY a.first_node
$$;
COMMENT ON FUNCTION ccvec.knn_adjacency_current(bigint) IS
    'The parts of kNN run p_run''s stored adjacency in node order, when it is still current (made at the last ccvec.knn_edge_change value drawn, read once for all parts); no rows otherwise.';
