-- ccvec.nearest (and so ccvec.similar and `ccvec similar --semantic -k K`) returned at most
-- hnsw.ef_search rows when the planner searched the model's HNSW index: pgvector's index scan stops
-- after ef_search candidates, so -k 100 gave 64 rows on a catalog where the index is used, silently.
-- The function now scans iteratively (pgvector 0.8: the index search goes on past ef_search, in
-- strict distance order, until the LIMIT is met or hnsw.max_scan_tuples are visited), set for the
-- call only, so a caller's own setting is kept outside it.
ALTER FUNCTION ccvec.nearest(text, halfvec, integer, uuid) SET hnsw.iterative_scan = strict_order;

COMMENT ON FUNCTION ccvec.nearest(text, halfvec, integer, uuid) IS
    'The p_k images of model p_model nearest to vector p_query (of the model''s dimension) by cosine, with similarity = 1 - cosine distance, listed by that similarity (highest first, ties by identifier); p_exclude, when given, is left out. Through the model''s HNSW index when it exists (approximate, hnsw.ef_search: the index picks the images, whose order it only approximates; the scan is iterative, so p_k above hnsw.ef_search still gives p_k rows, up to hnsw.max_scan_tuples visited), an exact scan otherwise. Raises VC002 when the model is not registered, VC001 for a NULL or negative p_k or a NULL query, VC003 for a query of another dimension.';
