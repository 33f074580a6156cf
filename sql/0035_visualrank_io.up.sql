-- VisualRank's input and output at catalog size (issue 17, item 2).
--
-- * The packed functions returned one bytea, and a bytea holds at most 1 GB: 36-byte edges stopped
--   fitting at about 29.8M edges (3M images at k = 10), where `ccvec refresh` would have failed.
--   They now return one bytea per range of heap blocks (ccvec.block_ranges: at most 4M rows each,
--   144 MB of edges; per partition when knn_edge is partitioned), read by TID range scans in one
--   call, so in one snapshot and one pass over the table, in heap order (an image's edges stay
--   together, as the client's indexing expects). Measured on 10M edges (psql, `SELECT
--   count(*), sum(length(packed)) FROM ccvec.knn_edges_packed(1)` and the single string_agg it
--   replaced): 2.3-2.8 s, against 2.5 s. The pass reads the rows of the runs earlier graph
--   builds kept, too (filtered out).
-- * visual_rank.run_id's foreign key made the write-back cost 2.5-4 s more per million ranks
--   (one referential check per row; 1.3 s without it, measured with the same binary COPY). Every
--   row is written in the transaction that creates its run (ccvec.visualrank_run_start, then one
--   COPY, in ccvec/visualrank.py; ccvec.visualrank() in SQL), and no run is ever deleted, so the
--   key holds by construction; it is dropped.

CREATE FUNCTION ccvec.block_tid(p_block bigint) RETURNS tid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT format('(%s,0)', p_block)::tid $$;
COMMENT ON FUNCTION ccvec.block_tid(bigint) IS
    'The first tuple position of heap block p_block: `ctid >= ccvec.block_tid(a) AND ctid < ccvec.block_tid(b)` reads blocks a to b - 1 with a TID range scan.';

CREATE FUNCTION ccvec.leaf_tables(p_table regclass) RETURNS SETOF regclass
LANGUAGE sql STABLE STRICT AS $$
    SELECT p_table WHERE (SELECT relkind FROM pg_class WHERE oid = p_table) <> 'p'
    UNION ALL
    SELECT relid FROM pg_partition_tree(p_table) WHERE isleaf
$$;
COMMENT ON FUNCTION ccvec.leaf_tables(regclass) IS
    'The tables that hold p_table''s rows: p_table itself, or its leaf partitions when it is partitioned.';

CREATE FUNCTION ccvec.block_ranges(p_table regclass, p_rows integer)
RETURNS TABLE (relation regclass, from_block bigint, to_block bigint)
LANGUAGE sql STABLE STRICT AS $$
    SELECT t.relation, b, b + s.step
    FROM (SELECT greatest(1, p_rows / (current_setting('block_size')::integer / 40)) AS step) s,
         ccvec.leaf_tables(p_table) AS t(relation),
         generate_series(0, greatest(pg_relation_size(t.relation) / current_setting('block_size')::bigint - 1, 0), s.step) b
$$;
COMMENT ON FUNCTION ccvec.block_ranges(regclass, integer) IS
    'Consecutive ranges [from_block, to_block) of heap blocks covering p_table, or each leaf partition of a partitioned one (relation says which), each holding at most p_rows rows of 40 bytes or more (a heap row''s header and line pointer alone take 28; at least one block per range). Rows appended after the call lie past the last range.';

-- Edges read in one pass over the table, partition by partition: a graph build keeps the runs
-- before it, so the pass also reads their rows (filtered out).
DROP FUNCTION ccvec.knn_edges_packed(bigint);
CREATE FUNCTION ccvec.knn_edges_packed(p_run bigint, p_rows integer DEFAULT 4000000) RETURNS TABLE (packed bytea)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM ccvec.block_ranges('ccvec.knn_edge', p_rows) LOOP
        RETURN QUERY EXECUTE format(
            'SELECT string_agg(uuid_send(e.identifier) || uuid_send(e.neighbour) || float4send(e.similarity), %L::bytea)
             FROM %s e WHERE e.run_id = $1 AND e.ctid >= ccvec.block_tid($2) AND e.ctid < ccvec.block_tid($3)',
            '', r.relation)
        USING p_run, r.from_block, r.to_block;
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.knn_edges_packed(bigint, integer) IS
    'Every edge of kNN run p_run as 36-byte rows (identifier uuid, neighbour uuid, similarity float4; big-endian), one bytea per ccvec.block_ranges range of ccvec.knn_edge (partition by partition) of at most p_rows rows, NULL for a range without edges of the run, so none nears the 1 GB limit: VisualRank''s input, read in one pass (the rows of other runs included, and filtered out).';

DROP FUNCTION ccvec.visual_ranks_packed();
CREATE FUNCTION ccvec.visual_ranks_packed(p_rows integer DEFAULT 4000000) RETURNS TABLE (packed bytea)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM ccvec.block_ranges('ccvec.visual_rank', p_rows) LOOP
        RETURN QUERY EXECUTE format(
            'SELECT string_agg(uuid_send(v.identifier) || float8send(v.rank), %L::bytea)
             FROM %s v WHERE v.ctid >= ccvec.block_tid($1) AND v.ctid < ccvec.block_tid($2)',
            '', r.relation)
        USING r.from_block, r.to_block;
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.visual_ranks_packed(integer) IS
    'Every stored VisualRank as 24-byte rows (identifier uuid, rank float8; big-endian), one bytea per ccvec.block_ranges range of ccvec.visual_rank of at most p_rows rows (NULL for an empty range): the warm start of the next computation.';

ALTER TABLE ccvec.visual_rank DROP CONSTRAINT visual_rank_run_id_fkey;
COMMENT ON TABLE ccvec.visual_rank IS
    'The latest VisualRank of every image in the graph: rank (stationary probability, summing to 1) and score (percentile of rank, in [0, 1]), with the run (a ccvec.visualrank_run: written in the transaction that creates the run; no foreign key, which cost 2.5-4 s per million rows written).';
