-- Back to 0014's novelty_scored and no trigger; the scores written since stay valid.
DROP TRIGGER image_embedding_novelty_forget ON ccvec.image_embedding;
DROP FUNCTION ccvec.novelty_score_forget();
DROP INDEX ccvec.novelty_score_identifier;
DROP FUNCTION ccvec.novelty_scored(text, timestamptz);
CREATE FUNCTION ccvec.novelty_scored(p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model SET scored_at = now() WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_scored(text) IS
    'Record that reference set p_name has just been scored (novelty_model.scored_at); returns nothing.';
DROP FUNCTION ccvec.novelty_score_batch(text, uuid[], real[], timestamptz);
DROP FUNCTION ccvec.novelty_vectors(text, uuid[]);
DROP FUNCTION ccvec.novelty_member_vectors(text);
DROP FUNCTION ccvec.novelty_fit_state(text);
DROP FUNCTION ccvec.novelty_unscored(text);
