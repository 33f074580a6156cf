DROP FUNCTION ccvec.knn_run_settings(bigint);
DROP FUNCTION ccvec.embeddings_of(text, uuid[]);
DROP FUNCTION ccvec.embeddings_after(text, uuid, bigint);
COMMENT ON FUNCTION ccvec.knn_exact_within(text, uuid[], double precision[], integer) IS
    'The exact p_k nearest images (cosine distance, ties by identifier, itself excluded) of each image of p_ids (each once) under model p_model, looking only within its p_reach cosine distance (which must hold p_k images: the k-th distance an approximate search found will do), in one pass over the model''s vectors. Used to choose the graph build''s hnsw.ef_search and by ccvec.knn_recall.';
