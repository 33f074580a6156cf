-- ccvec.nearest lists its answers by their exact similarity. Through the HNSW index the rows came in
-- the index's order, and pgvector's cosine index compares normalised copies of the vectors rounded
-- to half precision again: two neighbours whose similarities differ by less than that rounding
-- (~1e-4) could come out in the wrong order next to the similarities printed beside them. The index
-- still chooses the p_k images; their order is now the one the similarity column shows, ties by
-- identifier.

CREATE OR REPLACE FUNCTION ccvec.nearest(p_model text, p_query halfvec, p_k integer, p_exclude uuid DEFAULT NULL)
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT n.identifier, n.similarity
         FROM (SELECT e.identifier, (1 - (e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)))::real AS similarity
               FROM ccvec.image_embedding e
               WHERE e.model = %2$L AND e.identifier IS DISTINCT FROM $3
               ORDER BY e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)
               LIMIT $2) n
         ORDER BY n.similarity DESC, n.identifier', d, p_model)
    USING p_query, p_k, p_exclude;
END $$;

COMMENT ON FUNCTION ccvec.nearest(text, halfvec, integer, uuid) IS
    'The p_k images of model p_model nearest to vector p_query (of the model''s dimension) by cosine, with similarity = 1 - cosine distance, listed by that similarity (highest first, ties by identifier); p_exclude, when given, is left out. Through the model''s HNSW index when it exists (approximate, hnsw.ef_search: the index picks the images, whose order it only approximates), an exact scan otherwise. Raises when the model is not registered.';
