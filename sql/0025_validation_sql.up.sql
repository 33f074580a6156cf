-- Validation happens once, in SQL (issue 16): the functions that take a setting check it, and the
-- CLI and the Python API pass values through unchecked; a bad value is one VC001 line either way.
--
-- * ccvec.check_radius: 0..64 (a pHash has 64 bits), for hamming_neighbours and dedup.
-- * ccvec.duplicate_settings_check: every dedup setting, called before a run clears anything, and
--   by duplicate_run_start for SQL callers.
-- * ccvec.check_sim: --sim in [0, 1], for ccvec.cluster_threshold (cluster_graph and cluster_average
--   start with it) and for `ccvec run`, which checks before it loads anything.

CREATE FUNCTION ccvec.check_radius(p_radius integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_radius IS NULL OR p_radius NOT BETWEEN 0 AND 64 THEN
        RAISE EXCEPTION 'radius must be between 0 and 64, not %', coalesce(p_radius::text, 'NULL')
            USING ERRCODE = 'VC001';
    END IF;
    RETURN p_radius;
END $$;
COMMENT ON FUNCTION ccvec.check_radius(integer) IS
    'p_radius when it is a usable pHash Hamming radius (0 to 64); raises VC001 otherwise.';

CREATE FUNCTION ccvec.duplicate_settings_check(p_radius integer, p_cosine double precision,
                                               p_link double precision, p_k integer, p_prefer text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM ccvec.check_radius(p_radius);
    IF p_cosine IS NOT NULL AND NOT (p_cosine > 0 AND p_cosine <= 1) THEN
        RAISE EXCEPTION 'cosine threshold must be in (0, 1], not %', p_cosine USING ERRCODE = 'VC001';
    END IF;
    IF p_link IS NULL OR NOT (p_link > 0 AND p_link <= 1) THEN
        RAISE EXCEPTION 'link must be in (0, 1], not %', coalesce(p_link::text, 'NULL') USING ERRCODE = 'VC001';
    END IF;
    IF p_k IS NULL OR p_k < 1 THEN
        RAISE EXCEPTION 'k must be at least 1, not %', coalesce(p_k::text, 'NULL') USING ERRCODE = 'VC001';
    END IF;
    IF coalesce(cardinality(p_prefer), 0) = 0 THEN
        RAISE EXCEPTION 'give at least one canonical preference: original, largest, provider, oldest or newest'
            USING ERRCODE = 'VC001';
    END IF;
    PERFORM ccvec.canonical_order(p_prefer);  -- raises VC001 for an unknown preference
END $$;
COMMENT ON FUNCTION ccvec.duplicate_settings_check(integer, double precision, double precision, integer, text[]) IS
    'Raises VC001 unless the dedup settings are usable: radius 0..64, cosine in (0, 1] or NULL (pHash only), link in (0, 1], k >= 1, and known canonical preferences (ccvec.canonical_order). `ccvec dedup` calls it before it clears anything.';

CREATE OR REPLACE FUNCTION ccvec.duplicate_run_start(p_radius integer, p_cosine double precision, p_model text,
                                                     p_prefer text[], p_link double precision, p_k integer,
                                                     p_dihedral boolean)
RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    run_id bigint;
BEGIN
    PERFORM ccvec.duplicate_settings_check(p_radius, p_cosine, p_link, p_k, p_prefer);
    INSERT INTO ccvec.duplicate_run (radius, cosine, model, prefer, link, k, dihedral)
    VALUES (p_radius, p_cosine, p_model, p_prefer, p_link, p_k, p_dihedral) RETURNING id INTO run_id;
    RETURN run_id;
END $$;
COMMENT ON FUNCTION ccvec.duplicate_run_start(integer, double precision, text, text[], double precision, integer, boolean) IS
    'Records a new dedup run with its settings (checked by ccvec.duplicate_settings_check) and returns its id (edges and members point to it).';

CREATE FUNCTION ccvec.check_sim(p_sim real) RETURNS real
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF p_sim IS NULL OR p_sim NOT BETWEEN 0 AND 1 THEN
        RAISE EXCEPTION 'sim must be between 0 and 1, not %', coalesce(p_sim::text, 'NULL') USING ERRCODE = 'VC001';
    END IF;
    RETURN p_sim;
END $$;
COMMENT ON FUNCTION ccvec.check_sim(real) IS
    'p_sim when it is a usable similarity index (imagecluster''s sim, 0 to 1); raises VC001 otherwise. `ccvec run --sim` calls it before loading anything.';

CREATE OR REPLACE FUNCTION ccvec.cluster_threshold(p_knn_run bigint, p_sim real) RETURNS real
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM ccvec.check_sim(p_sim);
    RETURN (SELECT (lo + p_sim * (1 - lo))::real
            FROM (SELECT coalesce(min(similarity), 0) AS lo FROM ccvec.knn_edge WHERE run_id = p_knn_run) s);
END $$;

CREATE OR REPLACE FUNCTION ccvec.hamming_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg ccvec.mih_config;
    weights integer[];
    est_rows real;
BEGIN
    PERFORM ccvec.check_radius(p_radius);
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
    'Every image whose pHash is within p_radius bits of p_phash (0 to 64; VC001 otherwise, from ccvec.check_radius), with the distance; exact, the same rows as a brute-force scan (the query''s own image included). Probes the multi-index hash indexes, each chunk at its ccvec.mih_thresholds() weight, when ccvec.configure_mih() has run and that is cheaper than a scan, else scans ccvec.image_feature.';
COMMENT ON FUNCTION ccvec.cluster_threshold(bigint, real) IS
    'The cosine threshold for similarity index p_sim in [0, 1] (VC001 otherwise) on a kNN run: lo + p_sim * (1 - lo), lo the run''s lowest edge similarity (0 without edges); rescales the graph''s range as imagecluster''s sim does.';
