-- Back to one packed bytea per function (0016, 0020) and visual_rank's foreign key.

CREATE OR REPLACE FUNCTION ccvec.knn_edges_packed(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || uuid_send(neighbour) || float4send(similarity), ''::bytea)
    FROM ccvec.knn_edge WHERE run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed(bigint) IS
    'Every edge of kNN run p_run as one bytea of 36-byte rows (identifier uuid, neighbour uuid, similarity float4; big-endian), NULL without edges: VisualRank''s input in one value.';

CREATE OR REPLACE FUNCTION ccvec.visual_ranks_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || float8send(rank), ''::bytea) FROM ccvec.visual_rank
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed() IS
    'Every stored VisualRank as one bytea of 24-byte rows (identifier uuid, rank float8; big-endian), NULL when empty: the warm start of the next computation.';

CREATE OR REPLACE FUNCTION ccvec.knn_edges_packed_nodes(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(coalesce(a.node, -1)) || int4send(coalesce(b.node, -1))
                      || float4send(e.similarity), ''::bytea)
    FROM ccvec.knn_edge e
    LEFT JOIN ccvec.image_node a ON a.identifier = e.identifier
    LEFT JOIN ccvec.image_node b ON b.identifier = e.neighbour
    WHERE e.run_id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed_nodes(bigint) IS
    'Every edge of kNN run p_run as one bytea of 12-byte rows (identifier node, neighbour node, similarity float4; big-endian; node -1 when the image has no ccvec.image_node id yet), NULL without edges: VisualRank''s input in one value.';

CREATE OR REPLACE FUNCTION ccvec.image_nodes_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(node) || uuid_send(identifier), ''::bytea) FROM ccvec.image_node
$$;
COMMENT ON FUNCTION ccvec.image_nodes_packed() IS
    'Every ccvec.image_node row as one bytea of 20-byte rows (node int4, identifier uuid; big-endian), NULL when empty: how VisualRank names the ranks it writes back.';

CREATE OR REPLACE FUNCTION ccvec.visual_ranks_packed_nodes() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(n.node) || float8send(v.rank), ''::bytea)
    FROM ccvec.visual_rank v JOIN ccvec.image_node n USING (identifier)
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed_nodes() IS
    'Every stored VisualRank as one bytea of 12-byte rows (node int4, rank float8; big-endian), NULL when empty: the warm start of the next computation.';

ALTER TABLE ccvec.visual_rank ADD CONSTRAINT visual_rank_run_id_fkey
    FOREIGN KEY (run_id) REFERENCES ccvec.visualrank_run (id) ON DELETE CASCADE;
COMMENT ON TABLE ccvec.visual_rank IS
    'The latest VisualRank of every image in the graph: rank (stationary probability, summing to 1) and score (percentile of rank, in [0, 1]), with the run.';
