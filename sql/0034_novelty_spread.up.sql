-- Novelty as a distance to a centre in units of each dimension's spread (a diagonal Gaussian,
-- Mahalanobis-like), both within the collection and against a reference set. Each dimension's
-- standard deviation gets a floor of novelty.spread_floor (1) times the mean one, so dimensions
-- that barely vary in the fitted images do not dominate. On the shared collections
-- (bench/clusters.py, mean AUROC over 8 random draws) this beats the kNN scores it replaces and
-- scikit-learn's LocalOutlierFactor and GaussianMixture on all four tests: within a collection
-- 0.837 -> 0.859 (stamps among photos) and 0.950 -> 0.977 (photos among stamps); against a
-- reference 0.854 -> 0.881 (photos) and 0.968 -> 0.986 (stamps).
-- The kNN distance stays in the `distance` columns.

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('novelty.spread_floor', 1, 'novelty: each dimension''s standard deviation is floored by adding this times their mean (0 = plain per-dimension standardisation)'),
    ('novelty.fit_sample', 100000, 'novelty within the collection: the centre and spreads are fitted on at most this many images (the first by identifier: a random sample for random UUIDs)')
ON CONFLICT (name) DO NOTHING;
UPDATE ccvec.setting SET note = 'reference sets: members averaged over by the distance column (exact search, the costly part of scoring); 0 = no distance'
WHERE name = 'novelty.k';

-- ---------------------------------------------------------------- the distance

CREATE FUNCTION ccvec.spread_floor(p_mean vector, p_square vector) RETURNS double precision
LANGUAGE sql STABLE AS $$
    SELECT ccvec.setting('novelty.spread_floor') * avg(sqrt(greatest(s::float8 - m::float8 * m::float8, 0)))
    FROM unnest(p_mean::real[], p_square::real[]) AS u(m, s)
$$;
COMMENT ON FUNCTION ccvec.spread_floor(vector, vector) IS
    'The floor added to each dimension''s standard deviation: setting novelty.spread_floor times their mean, from the per-dimension mean and mean square.';

CREATE FUNCTION ccvec.spread_weights(p_mean vector, p_square vector, p_floor double precision) RETURNS vector
LANGUAGE sql IMMUTABLE AS $$
    SELECT array_agg((1 / greatest(sqrt(greatest(s::float8 - m::float8 * m::float8, 0)) + p_floor, 1e-6))::real
                     ORDER BY i)::vector
    FROM unnest(p_mean::real[], p_square::real[]) WITH ORDINALITY AS u(m, s, i)
$$;
COMMENT ON FUNCTION ccvec.spread_weights(vector, vector, double precision) IS
    'Per-dimension weights 1 / (standard deviation + p_floor), from the per-dimension mean and mean square.';

-- pgvector's operators are schema-qualified (with the schema the extension is installed in):
-- REFRESH MATERIALIZED VIEW (ccvec.image_novelty) runs with search_path pg_catalog only, and a SET
-- search_path clause would stop the planner inlining the function (a call per image: twice the
-- refresh time on bench/novelty_cost.py at 10k images).
DO $do$
BEGIN
    EXECUTE format($f$
        CREATE FUNCTION ccvec.spread_distance(p_x vector, p_centre vector, p_weight vector) RETURNS real
        LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $b$
            SELECT %1$I.vector_norm((p_x OPERATOR(%1$I.-) p_centre) OPERATOR(%1$I.*) p_weight)::real
        $b$$f$,
        (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'vector'));
END $do$;
COMMENT ON FUNCTION ccvec.spread_distance(vector, vector, vector) IS
    'Distance from p_x to p_centre in units of each dimension''s (floored) spread: || (x - centre) * weight ||, a diagonal Mahalanobis distance.';

-- ---------------------------------------------------------------- within the collection

CREATE TABLE ccvec.novelty_centre (
    model     text PRIMARY KEY REFERENCES ccvec.model (name) ON DELETE CASCADE,
    images    bigint NOT NULL,    -- how many images the centre and spreads were fitted on
    centre    vector NOT NULL,
    weight    vector NOT NULL,    -- 1 / (standard deviation + floor), per dimension
    fitted_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ccvec.novelty_centre IS
    'Per model: the centre and per-dimension spread weights of the collection, fitted by ccvec refresh; ccvec.image_novelty scores against them.';

CREATE FUNCTION ccvec.novelty_centre_fit() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE m text; n bigint := 0;
BEGIN
    SELECT r.model INTO m FROM ccvec.knn_run r WHERE r.is_current;
    IF m IS NULL THEN RETURN 0; END IF;
    INSERT INTO ccvec.novelty_centre AS c (model, images, centre, weight)
    SELECT m, f.n, f.centre, ccvec.spread_weights(f.centre, f.square, ccvec.spread_floor(f.centre, f.square))
    FROM (SELECT count(*) AS n, avg(s.x) AS centre, avg(s.x * s.x) AS square
          FROM (SELECT e.embedding::vector AS x FROM ccvec.image_embedding e WHERE e.model = m
                ORDER BY e.identifier LIMIT trunc(ccvec.setting('novelty.fit_sample'))::bigint) s) f
    WHERE f.n > 0
    ON CONFLICT (model) DO UPDATE
        SET images = excluded.images, centre = excluded.centre, weight = excluded.weight, fitted_at = now()
    RETURNING c.images INTO n;
    RETURN coalesce(n, 0);
END $$;
COMMENT ON FUNCTION ccvec.novelty_centre_fit() IS
    'Fit the current graph''s model''s centre and spread weights (ccvec.novelty_centre) on at most novelty.fit_sample of its images; returns how many (0 without a current graph). ccvec refresh runs it before ccvec.image_novelty.';

DROP MATERIALIZED VIEW ccvec.image_novelty;
CREATE MATERIALIZED VIEW ccvec.image_novelty AS
SELECT d.identifier, d.distance, (percent_rank() OVER (ORDER BY s.score, d.distance))::real AS novelty, s.score
FROM (SELECT identifier, min(model) AS model, (1 - avg(similarity))::real AS distance
      FROM ccvec.knn_current GROUP BY identifier) d
JOIN ccvec.image_embedding e ON e.model = d.model AND e.identifier = d.identifier
JOIN ccvec.novelty_centre c ON c.model = d.model
CROSS JOIN LATERAL (SELECT ccvec.spread_distance(e.embedding::vector, c.centre, c.weight) AS score) s
WITH NO DATA;
CREATE UNIQUE INDEX image_novelty_key ON ccvec.image_novelty (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.image_novelty IS
    'Per-image outlier score in [0,1] (novelty): percentile of score, the distance to the collection''s centre in units of each dimension''s spread (ccvec.novelty_centre), among the images of the current graph. distance = mean kNN distance, the score before migration 0034.';

CREATE OR REPLACE FUNCTION ccvec.explain_novelty(p_identifier uuid)
RETURNS TABLE (against text, novelty real, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'within the collection', n.novelty,
    format('distance to the centre in spreads %s, mean kNN distance %s',
           round(n.score::numeric, 2), round(n.distance::numeric, 3))
    FROM ccvec.image_novelty n WHERE n.identifier = p_identifier
    UNION ALL SELECT 'against ' || r.name, r.novelty, r.reference FROM ccvec.reference_novelty r
    WHERE r.identifier = p_identifier
$$;

-- ---------------------------------------------------------------- against a reference set

ALTER TABLE ccvec.novelty_model
    ADD COLUMN members integer,
    ADD COLUMN centre vector,
    ADD COLUMN square vector,    -- per-dimension mean square (with centre: the spreads, leave-one-out too)
    ADD COLUMN spread_floor double precision,
    ADD COLUMN weight vector,
    ADD COLUMN member_scores real[];  -- the members' leave-one-out scores, sorted: the percentile's scale
-- novelty.k = 0: no kNN distance for scored images (scoring is then linear in their number).
ALTER TABLE ccvec.novelty_score ALTER COLUMN distance DROP NOT NULL;

CREATE FUNCTION ccvec.novelty_reference_fit(p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model m
    SET members = f.n, centre = f.centre, square = f.square, spread_floor = f.floor,
        weight = ccvec.spread_weights(f.centre, f.square, f.floor)
    FROM (SELECT g.*, ccvec.spread_floor(g.centre, g.square) AS floor
          FROM (SELECT count(*)::integer AS n, avg(e.embedding::vector) AS centre,
                       avg(e.embedding::vector * e.embedding::vector) AS square
                FROM ccvec.novelty_model nm
                JOIN ccvec.novelty_reference r ON r.name = nm.name
                JOIN ccvec.image_embedding e ON e.model = nm.model AND e.identifier = r.identifier
                WHERE nm.name = p_name) g) f
    WHERE m.name = p_name AND f.n > 0
$$;
COMMENT ON FUNCTION ccvec.novelty_reference_fit(text) IS
    'Fit reference set p_name''s centre, per-dimension mean square, spread floor and weights (novelty_model) on its members; returns nothing.';

-- A member's own score leaves it out: centre and spreads of the other n - 1 members (the floor
-- stays the set's), so members are scored as unseen images are. In-sample scores would put about
-- half of unseen images of the same kind above 0.9 on the benchmark's halves.
CREATE OR REPLACE FUNCTION ccvec.novelty_reference_scores(p_name text, p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_reference r SET score = l.score
    FROM (SELECT q.identifier,
                 sqrt(sum(power((u.x - (u.c * k.n - u.x) / k.n1)
                                / greatest(sqrt(greatest((u.s * k.n - u.x * u.x) / k.n1
                                                         - power((u.c * k.n - u.x) / k.n1, 2), 0))
                                           + k.floor, 1e-6), 2)))::real AS score
          FROM (SELECT nm.model, nm.centre, nm.square, nm.members::float8 AS n,
                       greatest(nm.members - 1, 1)::float8 AS n1, nm.spread_floor AS floor
                FROM ccvec.novelty_model nm WHERE nm.name = p_name) k
          JOIN ccvec.image_embedding q ON q.model = k.model AND q.identifier = ANY (p_ids)
          CROSS JOIN LATERAL unnest(q.embedding::real[]::float8[], k.centre::real[]::float8[],
                                    k.square::real[]::float8[]) AS u(x, c, s)
          GROUP BY q.identifier) l
    WHERE r.name = p_name AND r.identifier = l.identifier
$$;
COMMENT ON FUNCTION ccvec.novelty_reference_scores(text, uuid[]) IS
    'Store the leave-one-out spread distance of these reference members (after ccvec.novelty_reference_fit): distance to the centre of the other members in units of their spreads; returns nothing.';

CREATE FUNCTION ccvec.novelty_reference_calibrate(p_name text) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_model m
    SET member_scores = (SELECT array_agg(r.score ORDER BY r.score) FROM ccvec.novelty_reference r
                         WHERE r.name = p_name AND r.score IS NOT NULL)
    WHERE m.name = p_name
$$;
COMMENT ON FUNCTION ccvec.novelty_reference_calibrate(text) IS
    'Store reference set p_name''s members'' leave-one-out scores, sorted (novelty_model.member_scores), after ccvec.novelty_reference_scores; returns nothing.';

-- novelty = the share of scored members whose own score is at most the image's, found by binary
-- search in the sorted scores (width_bucket): O(log n) per image instead of a pass over the members.
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
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[]) IS
    'Score images against a fitted reference set: score = spread distance to the set''s centre, novelty = share of the members whose own (leave-one-out) score is at most that, and distance = mean distance to the k nearest members (NULL when novelty.k was 0 at fit).';

COMMENT ON VIEW ccvec.reference_novelty IS
    'Per reference set and image outside it: mean kNN distance to the set, score (distance to the set''s centre in units of its spreads), and novelty in [0,1] (percentile of the score against the members'' own leave-one-out scores).';

-- Reference sets fitted before this migration: fit and rescore their members (images are
-- rescored by the next `ccvec refresh` or `ccvec novelty score`).
SELECT ccvec.novelty_reference_fit(name) FROM ccvec.novelty_model;
SELECT ccvec.novelty_reference_scores(name, array_agg(identifier))
FROM ccvec.novelty_reference GROUP BY name;
SELECT ccvec.novelty_reference_calibrate(name) FROM ccvec.novelty_model;
