-- Back to 0013's configure_mih and hamming_neighbours (one probe weight for every chunk).

CREATE OR REPLACE FUNCTION ccvec.configure_mih(p_chunks integer, p_max_masks integer DEFAULT 100000)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    widths integer[];
    c record;
    w integer;
    max_weight integer := 0;
    total numeric;
    branches text[] := '{}';
BEGIN
    IF p_chunks NOT BETWEEN 1 AND 16 THEN
        RAISE EXCEPTION 'number of chunks must be between 1 and 16, not %', p_chunks USING ERRCODE = 'VC001';
    END IF;
    -- widths differ by at most one bit, the wider chunks first
    SELECT array_agg(64 / p_chunks + CASE WHEN i <= 64 % p_chunks THEN 1 ELSE 0 END ORDER BY i)
      INTO widths FROM generate_series(1, p_chunks) i;
    -- masks: all weights whose cumulative count stays under p_max_masks for the widest chunk
    LOOP
        SELECT sum(ccvec.binomial(widths[1], k)) INTO total FROM generate_series(0, max_weight + 1) k;
        EXIT WHEN total > p_max_masks OR max_weight + 1 > widths[1];
        max_weight := max_weight + 1;
    END LOOP;
    FOR c IN SELECT indexname FROM pg_indexes
             WHERE schemaname = 'ccvec' AND indexname LIKE 'image\_feature\_mih\_%' LOOP
        EXECUTE format('DROP INDEX ccvec.%I', c.indexname);
    END LOOP;
    DELETE FROM ccvec.mih_mask;
    FOR w IN SELECT DISTINCT unnest(widths) LOOP
        INSERT INTO ccvec.mih_mask (bits, weight, mask)
        WITH RECURSIVE m(mask, weight, top) AS (
            SELECT 0::bigint, 0, -1
            UNION ALL
            SELECT m.mask | (1::bigint << b), m.weight + 1, b
            FROM m, generate_series(0, w - 1) b
            WHERE b > m.top AND m.weight < max_weight
        )
        SELECT w, weight, mask FROM m;
    END LOOP;
    FOR c IN SELECT * FROM ccvec.mih_chunks(widths) LOOP
        EXECUTE format('CREATE INDEX image_feature_mih_%s ON ccvec.image_feature (((phash >> %s) & %s)) INCLUDE (phash, identifier)',
                       c.chunk - 1, c.shift, c.mask);
        -- one branch of the search per chunk: index scan on the chunk = any probe value
        branches := branches || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m.mask FROM ccvec.mih_mask m
                 WHERE m.bits = %3$s AND m.weight <= p_weight))', c.shift, c.mask, c.bits);
    END LOOP;
    -- A static function for this layout, so its plan is cached (dynamic SQL would re-plan per call).
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weight integer)
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(branches, ' UNION ALL '));
    DELETE FROM ccvec.mih_config;
    INSERT INTO ccvec.mih_config (widths, max_weight, probes, rows_at_configure)
    SELECT widths, max_weight,
           array_agg((SELECT sum(ccvec.binomial(u.cw, g.kk))::integer
                      FROM unnest(widths) u(cw), generate_series(0, t.sw) g(kk)) ORDER BY t.sw),
           (SELECT count(*) FROM ccvec.image_feature)
    FROM generate_series(0, max_weight) t(sw);
    ANALYZE ccvec.image_feature;
END $$;


CREATE OR REPLACE FUNCTION ccvec.hamming_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg ccvec.mih_config;
    s integer;
    est_rows real;
BEGIN
    IF p_radius IS NULL OR p_radius < 0 THEN
        RAISE EXCEPTION 'radius must be >= 0, not %', p_radius USING ERRCODE = 'VC001';
    END IF;
    SELECT * INTO cfg FROM ccvec.mih_config;
    IF FOUND THEN
        s := p_radius / cardinality(cfg.widths);
        SELECT reltuples INTO est_rows FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass;
    END IF;
    IF cfg IS NULL OR s > cfg.max_weight
       OR cfg.probes[s + 1]::real * ccvec.mih_probe_cost() > greatest(est_rows, cfg.rows_at_configure) THEN
        RETURN QUERY SELECT f.identifier, ccvec.hamming(f.phash, p_phash)
                     FROM ccvec.image_feature f WHERE ccvec.hamming(f.phash, p_phash) <= p_radius;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT c.identifier, ccvec.hamming(c.phash, p_phash)
        FROM ccvec.mih_candidates(p_phash, s) c
        WHERE ccvec.hamming(c.phash, p_phash) <= p_radius
        GROUP BY c.identifier, c.phash;
END $$;

COMMENT ON FUNCTION ccvec.hamming_neighbours(bigint, integer) IS
    'Every image whose pHash is within p_radius bits of p_phash (p_radius >= 0), with the distance; exact, the same rows as a brute-force scan (the query''s own image included). Probes the multi-index hash indexes when ccvec.configure_mih() has run and that is cheaper than a scan, else scans ccvec.image_feature.';

DROP FUNCTION ccvec.mih_candidates(bigint, integer[]);
DROP FUNCTION ccvec.mih_make_candidates(integer[]);
DROP FUNCTION ccvec.mih_probe_count(integer[], integer[]);
DROP FUNCTION ccvec.mih_thresholds(integer[], integer);
