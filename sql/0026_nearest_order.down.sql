-- Back to 0004's ccvec.nearest (rows in the index's order) and 0013's comment.

CREATE OR REPLACE FUNCTION ccvec.nearest(p_model text, p_query halfvec, p_k integer, p_exclude uuid DEFAULT NULL)
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT e.identifier, (1 - (e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)))::real
         FROM ccvec.image_embedding e
         WHERE e.model = %2$L AND e.identifier IS DISTINCT FROM $3
         ORDER BY e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)
         LIMIT $2', d, p_model)
    USING p_query, p_k, p_exclude;
END $$;

COMMENT ON FUNCTION ccvec.nearest(text, halfvec, integer, uuid) IS
    'The p_k images of model p_model nearest to vector p_query (of the model''s dimension) by cosine, nearest first, with similarity = 1 - cosine distance; p_exclude, when given, is left out. Through the model''s HNSW index when it exists (approximate, hnsw.ef_search), an exact scan otherwise. Raises when the model is not registered.';
