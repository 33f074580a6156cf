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
-- 0034's SQL form first: the one it replaced calls the function dropped next
CREATE OR REPLACE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    INSERT INTO ccvec.novelty_score (name, identifier, distance, novelty, score)
    SELECT p_name, d.identifier, nb.distance,
           coalesce(width_bucket(d.score, d.member_scores)::double precision
                    / greatest(cardinality(d.member_scores), 1), 0)::real,
           d.score
    FROM (SELECT q.identifier, m.member_scores,
                 ccvec.spread_distance(q.embedding::vector, m.centre, m.weight) AS score
          FROM ccvec.novelty_model m
          JOIN ccvec.image_embedding q ON q.model = m.model AND q.identifier = ANY (p_ids)
          WHERE m.name = p_name) d
    LEFT JOIN ccvec.reference_distance(p_name, p_ids) nb ON nb.identifier = d.identifier
    ON CONFLICT (name, identifier) DO UPDATE
        SET distance = excluded.distance, novelty = excluded.novelty, score = excluded.score;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
DROP FUNCTION ccvec.novelty_score_batch(text, uuid[], real[], timestamptz);
DROP FUNCTION ccvec.novelty_vectors(text, uuid[]);
DROP FUNCTION ccvec.novelty_member_vectors(text);
DROP FUNCTION ccvec.novelty_fit_state(text);
DROP FUNCTION ccvec.novelty_unscored(text);
