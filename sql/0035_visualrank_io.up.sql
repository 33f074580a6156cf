-- VisualRank's input and output at catalog size (issue 17, item 2).
--
-- * The packed functions returned one bytea, and a bytea holds at most 1 GB: 36-byte edges stopped
--   fitting at about 29.8M edges (3M images at k = 10), where `ccvec refresh` would have failed.
--   Each now returns one row per leading byte of the identifier (up to 256 rows), each row a
--   whole number of packed rows, which the client concatenates; the edges of one image stay in
--   one row and in scan order, as before.
-- * visual_rank.run_id's foreign key made the write-back cost 2.5-4 s more per million ranks
--   (one referential check per row; 1.3 s without it, measured with the same binary COPY). Every
--   row is written in the transaction that creates its run (ccvec.visualrank_run_start, then one
--   COPY, in ccvec/visualrank.py and ccvec.visualrank()), and no run is ever deleted, so the key
--   holds by construction; it is dropped.

CREATE OR REPLACE FUNCTION ccvec.knn_edges_packed(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || uuid_send(neighbour) || float4send(similarity), ''::bytea)
    FROM ccvec.knn_edge WHERE run_id = p_run
    GROUP BY get_byte(uuid_send(identifier), 0)
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed(bigint) IS
    'Every edge of kNN run p_run as 36-byte rows (identifier uuid, neighbour uuid, similarity float4; big-endian), packed into one bytea per leading byte of the identifier (so none reaches the 1 GB limit), no row without edges: VisualRank''s input.';

CREATE OR REPLACE FUNCTION ccvec.visual_ranks_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(uuid_send(identifier) || float8send(rank), ''::bytea) FROM ccvec.visual_rank
    GROUP BY get_byte(uuid_send(identifier), 0)
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed() IS
    'Every stored VisualRank as 24-byte rows (identifier uuid, rank float8; big-endian), one bytea per leading byte of the identifier, no row when empty: the warm start of the next computation.';

CREATE OR REPLACE FUNCTION ccvec.knn_edges_packed_nodes(p_run bigint) RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(coalesce(a.node, -1)) || int4send(coalesce(b.node, -1))
                      || float4send(e.similarity), ''::bytea)
    FROM ccvec.knn_edge e
    LEFT JOIN ccvec.image_node a ON a.identifier = e.identifier
    LEFT JOIN ccvec.image_node b ON b.identifier = e.neighbour
    WHERE e.run_id = p_run
    GROUP BY get_byte(uuid_send(e.identifier), 0)
$$;
COMMENT ON FUNCTION ccvec.knn_edges_packed_nodes(bigint) IS
    'Every edge of kNN run p_run as 12-byte rows (identifier node, neighbour node, similarity float4; big-endian; node -1 when the image has no ccvec.image_node id yet), one bytea per leading byte of the identifier, no row without edges: VisualRank''s input.';

CREATE OR REPLACE FUNCTION ccvec.image_nodes_packed() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(node) || uuid_send(identifier), ''::bytea) FROM ccvec.image_node
    GROUP BY get_byte(uuid_send(identifier), 0)
$$;
COMMENT ON FUNCTION ccvec.image_nodes_packed() IS
    'Every ccvec.image_node row as 20-byte rows (node int4, identifier uuid; big-endian), one bytea per leading byte of the identifier, no row when empty: how VisualRank names the ranks it writes back.';

CREATE OR REPLACE FUNCTION ccvec.visual_ranks_packed_nodes() RETURNS TABLE (packed bytea)
LANGUAGE sql STABLE AS $$
    SELECT string_agg(int4send(n.node) || float8send(v.rank), ''::bytea)
    FROM ccvec.visual_rank v JOIN ccvec.image_node n USING (identifier)
    GROUP BY get_byte(uuid_send(v.identifier), 0)
$$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed_nodes() IS
    'Every stored VisualRank as 12-byte rows (node int4, rank float8; big-endian), one bytea per leading byte of the identifier, no row when empty: the warm start of the next computation.';

ALTER TABLE ccvec.visual_rank DROP CONSTRAINT visual_rank_run_id_fkey;
COMMENT ON TABLE ccvec.visual_rank IS
    'The latest VisualRank of every image in the graph: rank (stationary probability, summing to 1) and score (percentile of rank, in [0, 1]), with the run (a ccvec.visualrank_run: written in the transaction that creates the run; no foreign key, which cost 2.5-4 s per million rows written).';
