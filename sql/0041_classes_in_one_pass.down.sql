DROP FUNCTION ccvec.unclassified_embeddings(text, uuid, bigint);
CREATE FUNCTION ccvec.unclassified_embeddings(p_model text, p_limit bigint)
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding FROM ccvec.image_embedding e WHERE e.model = p_model AND NOT EXISTS
    (SELECT 1 FROM ccvec.image_class c WHERE c.model = e.model AND c.identifier = e.identifier)
    LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.unclassified_embeddings(text, bigint) IS
    'Up to p_limit (identifier, embedding) of the model without top classes yet: the next batch to classify.';
