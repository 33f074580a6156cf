-- Reference-set scores by what changed, with their kNN distances computed by the client.
--
-- An image's score against a reference set depends only on its embedding and on the fit, so
-- `ccvec refresh` scores only the images that have no score for the set yet; `ccvec novelty score`
-- and `ccvec refresh --cold` still rescore every image. What keeps "no score yet" equal to "needs a
-- score": a refit deletes the set's scores (novelty_model ON DELETE CASCADE), a changed or deleted
-- embedding deletes that image's scores (the trigger below), and a batch scored for a fit that was
-- replaced meanwhile writes nothing (novelty_score_batch checks the fit's created_at). Scores from
-- before this migration are dropped: 0034 left them to the next refresh, which may not have run,
-- so the next refresh scores every image again, as every refresh did before.
--
-- The exact kNN distance to the members (the `distance` column) was the costly part in SQL: each
-- scored image read every member's vector through the index (11 s per 500 images against 5,000
-- members, bench/novelty_cost.py). ccvec now reads the members' vectors once and computes the
-- distances in numpy (ccvec/clusters.py, reference_distances), then stores them with the scores
-- computed here; ccvec.reference_distance stays for SQL users.

DELETE FROM ccvec.novelty_score;
CREATE INDEX novelty_score_identifier ON ccvec.novelty_score (identifier);

-- SECURITY DEFINER: a role that may update embeddings (grant_access 'writer') need not be allowed to
-- delete scores for its change to drop the ones it invalidates.
CREATE FUNCTION ccvec.novelty_score_forget() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
    DELETE FROM ccvec.novelty_score s USING ccvec.novelty_model m
    WHERE s.identifier = OLD.identifier AND m.name = s.name AND m.model = OLD.model;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_forget() IS
    'Trigger function on ccvec.image_embedding (after delete, or update of the vector): deletes the image''s reference-set scores under that model, so the next refresh scores it again.';
CREATE TRIGGER image_embedding_novelty_forget
AFTER DELETE OR UPDATE OF embedding ON ccvec.image_embedding
FOR EACH ROW EXECUTE FUNCTION ccvec.novelty_score_forget();

CREATE FUNCTION ccvec.novelty_unscored(p_name text) RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT c.id
    FROM ccvec.novelty_model m
    CROSS JOIN LATERAL ccvec.novelty_candidates(m.model, m.name) AS c(id)
    WHERE m.name = p_name
      AND NOT EXISTS (SELECT 1 FROM ccvec.novelty_score s WHERE s.name = m.name AND s.identifier = c.id)
$$;
COMMENT ON FUNCTION ccvec.novelty_unscored(text) IS
    'The images of reference set p_name''s model outside the set with no score for it yet (new since the last scoring, or embedded again): what `ccvec refresh` scores.';

CREATE FUNCTION ccvec.novelty_fit_state(p_name text)
RETURNS TABLE (model text, k integer, fitted_at timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT m.model, m.k, m.created_at FROM ccvec.novelty_model m WHERE m.name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_fit_state(text) IS
    'Reference set p_name''s model, k (members the distance column averages over; 0: no distance column) and the time of its fit, which identifies the fit for novelty_score_batch; no row when there is no such set.';

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

CREATE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[], p_distances real[], p_fitted_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    -- the fit stays while this batch is written: a refit's DELETE waits for it (and then drops these
    -- rows with the old fit); a refit already made means this batch is for a fit that is gone
    PERFORM 1 FROM ccvec.novelty_model m WHERE m.name = p_name AND m.created_at = p_fitted_at FOR KEY SHARE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
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
          WHERE m.name = p_name AND m.created_at = p_fitted_at) d
    ON CONFLICT (name, identifier) DO UPDATE
        SET distance = excluded.distance, novelty = excluded.novelty, score = excluded.score;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[], real[], timestamptz) IS
    'Score images p_ids against reference set p_name: score = spread distance to the set''s centre, novelty = share of the members whose own (leave-one-out) score is at most that, distance = p_distances[i] for p_ids[i] as given (the mean distance to the k nearest members, searched by the caller; NULL for none). Only while the set is still the fit of p_fitted_at (ccvec.novelty_fit_state): returns how many rows were written, 0 once the set was fitted again. ccvec.novelty_score_batch(text, uuid[]) is the same with the distances searched in SQL.';

-- The SQL form keeps its signature and searches the distances here; the scores come from the
-- function above, so the novelty is defined once.
CREATE OR REPLACE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[]) RETURNS integer
LANGUAGE sql AS $$
    SELECT coalesce((
        SELECT ccvec.novelty_score_batch(p_name, d.ids, d.distances, m.created_at)
        FROM ccvec.novelty_model m,
             LATERAL (SELECT array_agg(i.id ORDER BY i.ord) AS ids,
                             array_agg(nb.distance ORDER BY i.ord) AS distances
                      FROM (SELECT u.id, min(u.ord) AS ord FROM unnest(p_ids) WITH ORDINALITY AS u(id, ord)
                            GROUP BY u.id) i  -- each image once, as = ANY (p_ids) read them
                      LEFT JOIN ccvec.reference_distance(p_name, p_ids) nb ON nb.identifier = i.id) d
        WHERE m.name = p_name), 0)
$$;

DROP FUNCTION ccvec.novelty_scored(text);
CREATE FUNCTION ccvec.novelty_scored(p_name text, p_fitted_at timestamptz DEFAULT NULL) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model SET scored_at = now()
    WHERE name = p_name AND (p_fitted_at IS NULL OR created_at = p_fitted_at)
$$;
COMMENT ON FUNCTION ccvec.novelty_scored(text, timestamptz) IS
    'Record that reference set p_name has just been scored (novelty_model.scored_at), unless it was fitted again since p_fitted_at; returns nothing.';
