-- Class predictions read in one pass over the embeddings. ccvec.unclassified_embeddings(model, limit)
-- found each batch by scanning from the start of the table past every image already classified,
-- so classifying n images read about n² / (2 x batch) rows: quadratic in the catalog. The new
-- form resumes after the last identifier of the previous batch (the primary key's order); the old
-- one goes (bench/classes.py times it from 0014's text).

DROP FUNCTION ccvec.unclassified_embeddings(text, bigint);

CREATE FUNCTION ccvec.unclassified_embeddings(p_model text, p_after uuid, p_limit bigint)
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding FROM ccvec.image_embedding e
    WHERE e.model = p_model AND (p_after IS NULL OR e.identifier > p_after)
      AND NOT EXISTS (SELECT 1 FROM ccvec.image_class c WHERE c.model = e.model AND c.identifier = e.identifier)
    ORDER BY e.identifier
    LIMIT p_limit
$$;
COMMENT ON FUNCTION ccvec.unclassified_embeddings(text, uuid, bigint) IS
    'Up to p_limit (identifier, embedding) of the model without top classes yet, in identifier order after p_after (NULL: from the first): the next batch to classify, one pass over the table in all.';
