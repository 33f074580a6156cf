-- Back to one packed bytea per function (0016) and visual_rank's foreign key.

DROP FUNCTION ccvec.knn_edges_packed(bigint, integer);
CREATE FUNCTION ccvec.knn_edges_packed(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || uuid_send(neighbour) || float4send(similarity), ''::bytea)
    FROM ccvec.knn_edge WHERE run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed(bigint) IS
    'Every edge of kNN run p_run as one bytea of 36-byte rows (identifier uuid, neighbour uuid, similarity float4; big-endian), NULL without edges: VisualRank''s input in one value.';

DROP FUNCTION ccvec.visual_ranks_packed(integer);
CREATE FUNCTION ccvec.visual_ranks_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || float8send(rank), ''::bytea) FROM ccvec.visual_rank
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed() IS
    'Every stored VisualRank as one bytea of 24-byte rows (identifier uuid, rank float8; big-endian), NULL when empty: the warm start of the next computation.';

DROP FUNCTION ccvec.block_ranges(regclass, integer);
DROP FUNCTION ccvec.leaf_tables(regclass);
DROP FUNCTION ccvec.block_tid(bigint);

DELETE FROM ccvec.visual_rank v WHERE NOT EXISTS (SELECT FROM ccvec.visualrank_run r WHERE r.id = v.run_id);
ALTER TABLE ccvec.visual_rank ADD CONSTRAINT visual_rank_run_id_fkey
    FOREIGN KEY (run_id) REFERENCES ccvec.visualrank_run (id) ON DELETE CASCADE;
COMMENT ON TABLE ccvec.visual_rank IS
    'The latest VisualRank of every image in the graph: rank (stationary probability, summing to 1) and score (percentile of rank, in [0, 1]), with the run.';
