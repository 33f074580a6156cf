-- The graph build's exact pass (the sample's true k nearest, to choose hnsw.ef_search and to count
-- the run's recall) moves to the client: ccvec.knn_exact_within computes every sample-to-image
-- cosine distance one pgvector call at a time, about 25 s for 200 images over 100k at 1280-d and
-- minutes at 1M, where numpy does the same products as one matrix multiply per batch of vectors
-- read in binary (bench/graph.py). The SQL functions stay for SQL users and tests; the build reads
-- the vectors through these two.

CREATE FUNCTION ccvec.embeddings_after(p_model text, p_after uuid, p_limit bigint)
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding FROM ccvec.image_embedding e
    WHERE e.model = p_model AND (p_after IS NULL OR e.identifier > p_after)
    ORDER BY e.identifier
    LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.embeddings_after(text, uuid, bigint) IS
    'Up to p_limit (identifier, embedding) of the model in identifier order after p_after (NULL: from the first): one batch of a pass over every vector of a model, resumed by key.';

CREATE FUNCTION ccvec.embeddings_of(p_model text, p_ids uuid[])
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding FROM ccvec.image_embedding e
    WHERE e.model = p_model AND e.identifier = ANY (p_ids)
    ORDER BY e.identifier
$$;
COMMENT ON FUNCTION ccvec.embeddings_of(text, uuid[]) IS
    'The (identifier, embedding) of the given images under the model, in identifier order (each once; images without an embedding of the model are left out).';

-- Dropped as unused by 0037; the run's recall, counted in numpy again, needs it back.
CREATE FUNCTION ccvec.knn_run_settings(p_run bigint) RETURNS TABLE (model text, k integer)
LANGUAGE sql STABLE AS $$
    SELECT model, k FROM ccvec.knn_run WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.knn_run_settings(bigint) IS
    'The model and k of kNN run p_run (no row when there is no such run): what the exact pass must match to count the run''s recall.';

COMMENT ON FUNCTION ccvec.knn_exact_within(text, uuid[], double precision[], integer) IS
    'The exact p_k nearest images (cosine distance, ties by identifier, itself excluded) of each image of p_ids (each once) under model p_model, looking only within its p_reach cosine distance (which must hold p_k images: the k-th distance an approximate search found will do), in one pass over the model''s vectors. Used by ccvec.knn_recall; the graph build makes the same pass in numpy (graph.exact_neighbours).';
