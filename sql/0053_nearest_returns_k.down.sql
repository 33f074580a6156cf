-- Back to 0052's ccvec.nearest: no iterative scan (at most hnsw.ef_search rows through the index).
ALTER FUNCTION ccvec.nearest(text, halfvec, integer, uuid) RESET hnsw.iterative_scan;

COMMENT ON FUNCTION ccvec.nearest(text, halfvec, integer, uuid) IS
    'The p_k images of model p_model nearest to vector p_query (of the model''s dimension) by cosine, with similarity = 1 - cosine distance, listed by that similarity (highest first, ties by identifier); p_exclude, when given, is left out. Through the model''s HNSW index when it exists (approximate, hnsw.ef_search: the index picks the images, whose order it only approximates), an exact scan otherwise. Raises VC002 when the model is not registered, VC001 for a NULL or negative p_k or a NULL query, VC003 for a query of another dimension.';
