-- Back to 0025's plpgsql hamming_neighbours, 0021's configure_mih and candidate functions,
-- ccvec.mih_mask and the probes column.

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

CREATE TABLE ccvec.mih_mask (
    bits   smallint NOT NULL,
    weight smallint NOT NULL,
    mask   bigint NOT NULL,
    PRIMARY KEY (bits, weight, mask)
);
COMMENT ON TABLE ccvec.mih_mask IS
    'Every mask of `bits` bits with `weight` bits set, for each chunk width in use and weight up to mih_config.max_weight: XORed with a query''s chunk value, they list the values to probe.';
SELECT ccvec.copy_grants('ccvec.mih_mask_set', 'ccvec.mih_mask');
INSERT INTO ccvec.mih_mask (bits, weight, mask)
SELECT s.bits, bit_count(m::bit(64)), m
FROM ccvec.mih_mask_set s CROSS JOIN unnest(s.masks) m
WHERE s.weight = (SELECT max_weight FROM ccvec.mih_config);

ALTER TABLE ccvec.mih_config ADD COLUMN probes integer[];
UPDATE ccvec.mih_config c
SET probes = (SELECT array_agg((SELECT sum(ccvec.binomial(u.cw, g.kk))::integer
                                FROM unnest(c.widths) u(cw), generate_series(0, t.sw) g(kk)) ORDER BY t.sw)
              FROM generate_series(0, c.max_weight) t(sw));
ALTER TABLE ccvec.mih_config ALTER COLUMN probes SET NOT NULL;
COMMENT ON TABLE ccvec.mih_config IS
    'The multi-index hashing layout in use, at most one row (written by ccvec.configure_mih): chunk widths from the most significant bits down, the largest precomputed probe weight, index probes per query (probes[s + 1] for s = radius / chunks) and the row count when configured. No row: ccvec.hamming_neighbours scans.';

CREATE OR REPLACE FUNCTION ccvec.configure_mih(p_chunks integer, p_max_masks integer DEFAULT 100000)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    widths integer[];
    c record;
    w integer;
    max_weight integer := 0;
    total numeric;
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
    END LOOP;
    PERFORM ccvec.mih_make_candidates(widths);
    DELETE FROM ccvec.mih_config;
    INSERT INTO ccvec.mih_config (widths, max_weight, probes, rows_at_configure)
    SELECT widths, max_weight,
           array_agg((SELECT sum(ccvec.binomial(u.cw, g.kk))::integer
                      FROM unnest(widths) u(cw), generate_series(0, t.sw) g(kk)) ORDER BY t.sw),
           (SELECT count(*) FROM ccvec.image_feature)
    FROM generate_series(0, max_weight) t(sw);
    ANALYZE ccvec.image_feature;
    ANALYZE ccvec.mih_mask;
END $$;

COMMENT ON FUNCTION ccvec.configure_mih(integer, integer) IS
    'Re-chunk multi-index hashing into p_chunks (1..16) chunks of near-equal width: recreates the chunk expression indexes on ccvec.image_feature, precomputes ccvec.mih_mask up to the largest weight whose masks for the widest chunk number at most p_max_masks, regenerates ccvec.mih_candidates() for the layout, records it in ccvec.mih_config and analyzes image_feature. Rebuilds indexes over the whole table: run it after loading, not per query.';

CREATE OR REPLACE FUNCTION ccvec.mih_make_candidates(p_widths integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    branches text[] := '{}';
    weighted text[] := '{}';
BEGIN
    FOR c IN SELECT * FROM ccvec.mih_chunks(p_widths) LOOP
        branches := branches || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m.mask FROM ccvec.mih_mask m
                 WHERE m.bits = %3$s AND m.weight <= p_weight))', c.shift, c.mask, c.bits);
        -- the same with this chunk's own weight (a weight of -1 probes nothing)
        weighted := weighted || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m.mask FROM ccvec.mih_mask m
                 WHERE m.bits = %3$s AND m.weight <= p_weights[%4$s]))', c.shift, c.mask, c.bits, c.chunk);
    END LOOP;
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weight integer)
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(branches, ' UNION ALL '));
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weights integer[])
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(weighted, ' UNION ALL '));
END $$;
COMMENT ON FUNCTION ccvec.mih_make_candidates(integer[]) IS
    'Generate ccvec.mih_candidates(bigint, integer) and ccvec.mih_candidates(bigint, integer[]) for the chunk layout of widths p_widths (its indexes must exist: ccvec.configure_mih() builds them, then calls this).';


-- the one-weight search function again: 0013's placeholder, replaced for a layout in place
CREATE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weight integer)
RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE
AS $f$ SELECT identifier, phash FROM ccvec.image_feature $f$;
COMMENT ON FUNCTION ccvec.mih_candidates(bigint, integer) IS
    'Candidates of a multi-index probe: every image whose pHash is within p_weight bits of p_phash on at least one chunk (one row per matching chunk, so possibly repeated). A superset of the hashes within chunks * (p_weight + 1) - 1 bits; callers check the full distance. Generated by ccvec.configure_mih() for its layout; before that, every image.';
SELECT ccvec.mih_make_candidates(widths) FROM ccvec.mih_config;

DROP FUNCTION ccvec.mih_make_plan();
DROP TABLE ccvec.mih_plan;
DROP TABLE ccvec.mih_mask_set;
DROP FUNCTION ccvec.copy_grants(regclass, regclass);
ANALYZE ccvec.mih_mask;
