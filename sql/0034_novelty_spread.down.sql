-- Back to the kNN scores: 0009's ccvec.image_novelty (mean kNN distance), 0022's reference score
-- d * sqrt(d / n) and 0015's ccvec.explain_novelty.

CREATE OR REPLACE FUNCTION ccvec.explain_novelty(p_identifier uuid)
RETURNS TABLE (against text, novelty real, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'within the collection', n.novelty,
    format('mean kNN distance %s', round(n.distance::numeric, 3))
    FROM ccvec.image_novelty n WHERE n.identifier = p_identifier
    UNION ALL SELECT 'against ' || r.name, r.novelty, r.reference FROM ccvec.reference_novelty r
    WHERE r.identifier = p_identifier
$$;

DROP MATERIALIZED VIEW ccvec.image_novelty;
CREATE MATERIALIZED VIEW ccvec.image_novelty AS
SELECT identifier, distance, (percent_rank() OVER (ORDER BY distance))::real AS novelty
FROM (SELECT identifier, (1 - avg(similarity))::real AS distance
      FROM ccvec.knn_current GROUP BY identifier) d
WITH NO DATA;
CREATE UNIQUE INDEX image_novelty_key ON ccvec.image_novelty (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.image_novelty IS
    'Per-image outlier score in [0,1]: percentile of the mean kNN distance in the current graph.';


CREATE OR REPLACE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    INSERT INTO ccvec.novelty_score (name, identifier, distance, novelty, score)
    SELECT p_name, d.identifier, d.distance,
           (SELECT count(*) FILTER (WHERE r.score < d.score)::real / greatest(count(*), 1)
            FROM ccvec.novelty_reference r WHERE r.name = p_name),
           d.score
    FROM (SELECT nb.identifier, nb.distance, ccvec.density_score(nb.distance, nb.neighbour_distance) AS score
          FROM ccvec.reference_neighbourhood(p_name, p_ids) nb) d
    ON CONFLICT (name, identifier) DO UPDATE
        SET distance = excluded.distance, novelty = excluded.novelty, score = excluded.score;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[]) IS
    'Score images against a fitted reference set: distance, density-relative score, and novelty = share of the reference members whose own score is lower.';


CREATE OR REPLACE FUNCTION ccvec.novelty_reference_scores(p_name text, p_ids uuid[]) RETURNS void
LANGUAGE sql AS $$
    UPDATE ccvec.novelty_reference r SET score = ccvec.density_score(n.distance, n.neighbour_distance)
    FROM ccvec.reference_neighbourhood(p_name, p_ids) n WHERE r.name = p_name AND r.identifier = n.identifier
$$;
COMMENT ON FUNCTION ccvec.novelty_reference_scores(text, uuid[]) IS
    'Store the density-relative score of these reference members (after every member''s distance is stored); returns nothing.';


COMMENT ON VIEW ccvec.reference_novelty IS
    'Per reference set and image outside it: distance to the set, density-relative score, and novelty in [0,1] (percentile of the score against the set''s own members).';


DROP FUNCTION ccvec.novelty_reference_fit(text);
DROP FUNCTION ccvec.novelty_reference_calibrate(text);
ALTER TABLE ccvec.novelty_model
    DROP COLUMN members, DROP COLUMN centre, DROP COLUMN square, DROP COLUMN spread_floor, DROP COLUMN weight,
    DROP COLUMN member_scores;
-- Images scored without a kNN distance (novelty.k = 0) are dropped; the next scoring redoes them.
DELETE FROM ccvec.novelty_score WHERE distance IS NULL;
ALTER TABLE ccvec.novelty_score ALTER COLUMN distance SET NOT NULL;
UPDATE ccvec.setting SET note = 'reference images averaged over by the reference-set novelty score'
WHERE name = 'novelty.k';
DROP FUNCTION ccvec.novelty_centre_fit();
DROP TABLE ccvec.novelty_centre;
DROP FUNCTION ccvec.spread_distance(vector, vector, vector);
DROP FUNCTION ccvec.spread_weights(vector, vector, double precision);
DROP FUNCTION ccvec.spread_floor(vector, vector);
DELETE FROM ccvec.setting WHERE name IN ('novelty.spread_floor', 'novelty.fit_sample');

-- Sets fitted after 0034 have no members' kNN distances (the old score needs them): compute them,
-- then the old scores.
SELECT ccvec.novelty_reference_distances(name, array_agg(identifier))
FROM ccvec.novelty_reference GROUP BY name;
SELECT ccvec.novelty_reference_scores(name, array_agg(identifier))
FROM ccvec.novelty_reference GROUP BY name;
