-- Reference-set scores by what changed, with their kNN distances computed by the client.
--
-- An image's score against a reference set depends only on its embedding (never rewritten: the
-- loader keeps existing vectors) and on the fit (a refit deletes the set's scores), so `ccvec
-- refresh` scores only the images that have no score yet or were embedded again since the last
-- scoring; `ccvec novelty score` still rescores every image. The exact kNN distance to the members
-- (the `distance` column) was the costly part in SQL: each scored image read every member's
-- vector through the index (11 s per 500 images against 5,000 members, bench/novelty_cost.py).
-- ccvec now reads the members' vectors once and computes the distances in numpy
-- (ccvec/clusters.py, reference_distances), then stores them with the scores computed here.

CREATE FUNCTION ccvec.novelty_unscored(p_name text) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT e.identifier
    FROM ccvec.novelty_model m
    JOIN ccvec.image_embedding e ON e.model = m.model
    WHERE m.name = p_name
      AND NOT EXISTS (SELECT 1 FROM ccvec.novelty_reference r WHERE r.name = m.name AND r.identifier = e.identifier)
      AND (m.scored_at IS NULL OR e.computed_at >= m.scored_at
           OR NOT EXISTS (SELECT 1 FROM ccvec.novelty_score s WHERE s.name = m.name AND s.identifier = e.identifier))
$$;
COMMENT ON FUNCTION ccvec.novelty_unscored(text) IS
    'The images of reference set p_name''s model outside the set with no score yet, or embedded since the set was last scored (novelty_model.scored_at): what `ccvec refresh` scores.';

CREATE FUNCTION ccvec.novelty_k(p_name text) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT k FROM ccvec.novelty_model WHERE name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_k(text) IS
    'How many nearest members reference set p_name''s distance column averages over (novelty.k at its fit; 0: no distance column); NULL when there is no such set.';

CREATE FUNCTION ccvec.novelty_member_vectors(p_name text)
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding
    FROM ccvec.novelty_model m
    JOIN ccvec.novelty_reference r ON r.name = m.name
    JOIN ccvec.image_embedding e ON e.model = m.model AND e.identifier = r.identifier
    WHERE m.name = p_name
    ORDER BY e.identifier
$$;
COMMENT ON FUNCTION ccvec.novelty_member_vectors(text) IS
    'The embeddings of reference set p_name''s members, by identifier: what the client searches for the kNN distance column.';

CREATE FUNCTION ccvec.novelty_vectors(p_name text, p_ids uuid[])
RETURNS TABLE (identifier uuid, embedding halfvec)
LANGUAGE sql STABLE AS $$
    SELECT e.identifier, e.embedding
    FROM ccvec.novelty_model m
    JOIN ccvec.image_embedding e ON e.model = m.model AND e.identifier = ANY (p_ids)
    WHERE m.name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_vectors(text, uuid[]) IS
    'The embeddings of images p_ids under reference set p_name''s model (a batch to score).';

CREATE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[], p_distances real[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    INSERT INTO ccvec.novelty_score (name, identifier, distance, novelty, score)
    SELECT p_name, d.identifier, d.distance,
           coalesce(width_bucket(d.score, d.member_scores)::double precision
                    / greatest(cardinality(d.member_scores), 1), 0)::real,
           d.score
    FROM (SELECT q.identifier, m.member_scores, g.distance,
                 ccvec.spread_distance(q.embedding::vector, m.centre, m.weight) AS score
          FROM ccvec.novelty_model m
          JOIN unnest(p_ids, p_distances) AS g(identifier, distance) ON true
          JOIN ccvec.image_embedding q ON q.model = m.model AND q.identifier = g.identifier
          WHERE m.name = p_name) d
    ON CONFLICT (name, identifier) DO UPDATE
        SET distance = excluded.distance, novelty = excluded.novelty, score = excluded.score;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[], real[]) IS
    'Score images against a fitted reference set as ccvec.novelty_score_batch(text, uuid[]) does, with the kNN distance column given (p_distances[i] for p_ids[i], NULL for none) instead of searched here; returns how many rows were written.';

DROP FUNCTION ccvec.novelty_scored(text);
CREATE FUNCTION ccvec.novelty_scored(p_name text, p_as_of timestamptz DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    DELETE FROM ccvec.novelty_score s
    WHERE s.name = p_name AND NOT EXISTS (
        SELECT 1 FROM ccvec.novelty_model m JOIN ccvec.image_embedding e ON e.model = m.model
        WHERE m.name = s.name AND e.identifier = s.identifier);
    UPDATE ccvec.novelty_model SET scored_at = coalesce(p_as_of, now()) WHERE name = p_name;
$$;
COMMENT ON FUNCTION ccvec.novelty_scored(text, timestamptz) IS
    'Record that reference set p_name has been scored as of p_as_of (default now(); novelty_model.scored_at: images embedded later are scored by the next refresh), and drop the scores of images no longer embedded; returns nothing.';
