-- The graph build's search breadth chosen by the recall it buys (issues 17 and 15).
--
-- hnsw.ef_search 64 gave recall@10 0.97-0.99 on the shared photos at 100k images, but 0.793 on a
-- 1M-image synthetic catalog (docs/benchmarks.md, "Peak memory at 1M"). `ccvec graph build` now
-- measures, on a sample, the recall of breadths 64, 128, 256, 512 and builds with the smallest
-- that reaches 0.95 (ccvec.graph.choose_ef_search). The exact neighbours of the sample come from
-- one pass over the vectors, bounded per image by the distance of the k-th neighbour HNSW found
-- (k real images lie within it, so the exact k nearest do too), as ccvec.knn_recall bounds its
-- pass by the run's edges.

CREATE FUNCTION ccvec.knn_exact_within(p_model text, p_ids uuid[], p_reach double precision[], p_k integer)
RETURNS TABLE (identifier uuid, neighbour uuid, distance double precision)
LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format(
        'WITH s AS MATERIALIZED (
             SELECT q.identifier, q.embedding::halfvec(%1$s) AS v, r.reach
             FROM (SELECT DISTINCT ON (u.identifier) u.identifier, u.reach
                   FROM unnest($1, $2) AS u(identifier, reach) ORDER BY u.identifier, u.reach DESC) r
             JOIN ccvec.image_embedding q ON q.model = %2$L AND q.identifier = r.identifier),
         near AS (
             SELECT s.identifier, e.identifier AS neighbour, e.v <=> s.v AS distance
             FROM (SELECT identifier, embedding::halfvec(%1$s) AS v FROM ccvec.image_embedding
                   WHERE model = %2$L) e
             JOIN s ON (e.v <=> s.v) <= s.reach AND e.identifier <> s.identifier)
         SELECT identifier, neighbour, distance FROM (
             SELECT near.*, row_number() OVER (PARTITION BY identifier ORDER BY distance, neighbour) AS rk
             FROM near) r
         WHERE rk <= $3',
        ccvec.model_dim(p_model), p_model)
    USING p_ids, p_reach, p_k;
END $$;
COMMENT ON FUNCTION ccvec.knn_exact_within(text, uuid[], double precision[], integer) IS
    'The exact p_k nearest images (cosine distance, ties by identifier, itself excluded) of each image of p_ids (each once) under model p_model, looking only within its p_reach cosine distance (which must hold p_k images: the k-th distance an approximate search found will do), in one pass over the model''s vectors. Used to choose the graph build''s hnsw.ef_search and by ccvec.knn_recall.';

CREATE FUNCTION ccvec.knn_run_edges(p_run bigint, p_ids uuid[]) RETURNS TABLE (identifier uuid, neighbour uuid)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.neighbour FROM ccvec.knn_edge e WHERE e.run_id = p_run AND e.identifier = ANY (p_ids)
$$;
COMMENT ON FUNCTION ccvec.knn_run_edges(bigint, uuid[]) IS
    'The edges (image, neighbour) of the given images in kNN run p_run: the graph build counts them against the exact neighbours it found for the half of its sample it did not choose the breadth on.';

-- ccvec.knn_recall on the same exact pass, each image bounded by its own k-th edge in the run.
CREATE OR REPLACE FUNCTION ccvec.knn_recall(p_run bigint, p_sample uuid[])
RETURNS TABLE (found bigint, expected bigint)
LANGUAGE sql AS $$
    WITH run AS (SELECT model, k FROM ccvec.knn_run WHERE id = p_run),
    bounded AS (
        SELECT array_agg(s.identifier ORDER BY s.ord) AS ids, array_agg(coalesce(r.reach, 2) ORDER BY s.ord) AS reach
        FROM run, unnest(p_sample) WITH ORDINALITY AS s(identifier, ord)
        LEFT JOIN LATERAL (
            SELECT max(1 - g.similarity::float8) + 1e-4 AS reach FROM ccvec.knn_edge g
            WHERE g.run_id = p_run AND g.identifier = s.identifier
            HAVING count(*) >= run.k) r ON true)
    SELECT count(g.neighbour), count(*)
    FROM run, bounded, ccvec.knn_exact_within(run.model, bounded.ids, bounded.reach, run.k) x
    LEFT JOIN ccvec.knn_edge g ON g.run_id = p_run AND g.identifier = x.identifier AND g.neighbour = x.neighbour
$$;
