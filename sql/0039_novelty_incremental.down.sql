-- Back to 0014's novelty_scored; the scores computed with client-side distances stay valid.
DROP FUNCTION ccvec.novelty_scored(text, timestamptz);
CREATE FUNCTION ccvec.novelty_scored(p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model SET scored_at = now() WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_scored(text) IS
    'Record that reference set p_name has just been scored (novelty_model.scored_at); returns nothing.';
DROP FUNCTION ccvec.novelty_score_batch(text, uuid[], real[]);
DROP FUNCTION ccvec.novelty_vectors(text, uuid[]);
DROP FUNCTION ccvec.novelty_member_vectors(text);
DROP FUNCTION ccvec.novelty_k(text);
DROP FUNCTION ccvec.novelty_unscored(text);
