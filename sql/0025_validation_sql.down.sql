-- Back to 0021's hamming_neighbours, 0015's duplicate_run_start and 0004's cluster_threshold
-- (no checks of their own), and no check functions.

CREATE OR REPLACE FUNCTION ccvec.hamming_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg ccvec.mih_config;
    weights integer[];
    est_rows real;
BEGIN
    IF p_radius IS NULL OR p_radius < 0 THEN
        RAISE EXCEPTION 'radius must be >= 0, not %', p_radius USING ERRCODE = 'VC001';
    END IF;
    SELECT * INTO cfg FROM ccvec.mih_config;
    IF FOUND THEN
        weights := ccvec.mih_thresholds(cfg.widths, p_radius);
        SELECT reltuples INTO est_rows FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass;
    END IF;
    IF cfg IS NULL OR (SELECT max(t) FROM unnest(weights) t) > cfg.max_weight
       OR ccvec.mih_probe_count(cfg.widths, weights)::real * ccvec.mih_probe_cost()
          > greatest(est_rows, cfg.rows_at_configure) THEN
        RETURN QUERY SELECT f.identifier, ccvec.hamming(f.phash, p_phash)
                     FROM ccvec.image_feature f WHERE ccvec.hamming(f.phash, p_phash) <= p_radius;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT c.identifier, ccvec.hamming(c.phash, p_phash)
        FROM ccvec.mih_candidates(p_phash, weights) c
        WHERE ccvec.hamming(c.phash, p_phash) <= p_radius
        GROUP BY c.identifier, c.phash;
END $$;
COMMENT ON FUNCTION ccvec.hamming_neighbours(bigint, integer) IS
    'Every image whose pHash is within p_radius bits of p_phash (p_radius >= 0), with the distance; exact, the same rows as a brute-force scan (the query''s own image included). Probes the multi-index hash indexes, each chunk at its ccvec.mih_thresholds() weight, when ccvec.configure_mih() has run and that is cheaper than a scan, else scans ccvec.image_feature.';

CREATE OR REPLACE FUNCTION ccvec.duplicate_run_start(p_radius integer, p_cosine double precision, p_model text,
                                          p_prefer text[], p_link double precision, p_k integer,
                                          p_dihedral boolean)
RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.duplicate_run (radius, cosine, model, prefer, link, k, dihedral)
    VALUES (p_radius, p_cosine, p_model, p_prefer, p_link, p_k, p_dihedral) RETURNING id
$$;
COMMENT ON FUNCTION ccvec.duplicate_run_start(integer, double precision, text, text[], double precision, integer, boolean) IS
    'Records a new dedup run with its settings and returns its id (edges and members point to it).';

CREATE OR REPLACE FUNCTION ccvec.cluster_threshold(p_knn_run bigint, p_sim real) RETURNS real
LANGUAGE sql STABLE AS $$
    SELECT (lo + p_sim * (1 - lo))::real
    FROM (SELECT coalesce(min(similarity), 0) AS lo FROM ccvec.knn_edge WHERE run_id = p_knn_run) s
$$;
COMMENT ON FUNCTION ccvec.cluster_threshold(bigint, real) IS
    'The cosine threshold for similarity index p_sim in [0, 1] on a kNN run: lo + p_sim * (1 - lo), lo the run''s lowest edge similarity (0 without edges); rescales the graph''s range as imagecluster''s sim does.';

DROP FUNCTION ccvec.duplicate_settings_check(integer, double precision, double precision, integer, text[]);
DROP FUNCTION ccvec.check_radius(integer);
DROP FUNCTION ccvec.check_sim(real);
