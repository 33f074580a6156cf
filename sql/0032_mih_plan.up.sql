-- Hamming search without per-call planning (issue 17, item 3).
--
-- ccvec.hamming_neighbours was a plpgsql function that, on every call, read the layout, computed
-- each chunk's probe weight (ccvec.mih_thresholds) and the probe count, looked up the row estimate
-- and planned its query afresh: PostgreSQL's plan cache keeps re-planning a statement whose custom
-- plans look cheaper than the generic one, and planning the four-chunk probe took about 0.3 ms,
-- against 0.07 ms to run it at radius 1 (1M hashes). Now:
--
-- * ccvec.configure_mih() writes each radius's weights and probe count once, into ccvec.mih_plan;
-- * hamming_neighbours is one SQL statement that reads them and always runs its generic plan
--   (the plan's shape does not depend on the query's hash or radius; PostgreSQL 18 caches the plans
--   of SQL functions, 15-17 plan them per call);
-- * so that the generic plan finds each chunk's masks by key, whatever the table's size, the masks
--   are stored as one array per (chunk width, weight) in ccvec.mih_mask_set, which replaces
--   ccvec.mih_mask (one row per mask, looked up by `weight <= w`: a generic plan guesses a third
--   of the table for that and scanned it, 2.5 ms per query with 13-bit chunks);
-- * the one-weight ccvec.mih_candidates(bigint, integer), unused since 0021 but by a benchmark,
--   is dropped, and so is mih_config.probes (per uniform weight, unused since 0021).

-- Roles granted access before this migration (ccvec.grant_access grants the tables that exist
-- then) keep it: the new tables get the grants of the ones they stand beside or replace.
CREATE FUNCTION ccvec.copy_grants(p_from regclass, p_to regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.privilege_type,
                    CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee,
                    CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END AS grantable
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
             WHERE c.oid = p_from AND a.grantee <> c.relowner LOOP
        -- regrole prints a name quoted where it needs quoting
        EXECUTE format('GRANT %s ON %s TO %s%s', r.privilege_type, p_to, r.grantee, r.grantable);
    END LOOP;
END $$;
COMMENT ON FUNCTION ccvec.copy_grants(regclass, regclass) IS
    'Grant on table p_to every privilege that roles other than the owner hold on p_from: a migration that adds or replaces a table keeps the access ccvec.grant_access gave before it.';

CREATE TABLE ccvec.mih_plan (
    radius  integer PRIMARY KEY CHECK (radius BETWEEN 0 AND 64),
    weights integer[] NOT NULL,
    probes  bigint NOT NULL
);
COMMENT ON TABLE ccvec.mih_plan IS
    'The multi-index probe of each Hamming radius for the current layout (ccvec.mih_config): the weight per chunk (ccvec.mih_thresholds) and the index probes it costs. Radii whose weights exceed the layout''s masks have no row (they scan). Written by ccvec.configure_mih().';

CREATE TABLE ccvec.mih_mask_set (
    bits   smallint NOT NULL,
    weight smallint NOT NULL,
    masks  bigint[] NOT NULL,
    PRIMARY KEY (bits, weight)
);
COMMENT ON TABLE ccvec.mih_mask_set IS
    'For each chunk width in use (`bits`) and each weight up to mih_config.max_weight, every mask of `bits` bits with at most `weight` bits set: XORed with a query''s chunk value, they list the values a probe at that weight looks up. Written by ccvec.configure_mih().';
SELECT ccvec.copy_grants('ccvec.mih_config', 'ccvec.mih_plan');
SELECT ccvec.copy_grants('ccvec.mih_mask', 'ccvec.mih_mask_set');
INSERT INTO ccvec.mih_mask_set (bits, weight, masks)
SELECT m.bits, t.weight, array_agg(m.mask ORDER BY m.weight, m.mask)
FROM ccvec.mih_config c
CROSS JOIN generate_series(0, c.max_weight) t(weight)
JOIN ccvec.mih_mask m ON m.weight <= t.weight
GROUP BY m.bits, t.weight;
DROP TABLE ccvec.mih_mask;

ALTER TABLE ccvec.mih_config DROP COLUMN probes;
COMMENT ON TABLE ccvec.mih_config IS
    'The multi-index hashing layout in use, at most one row (written by ccvec.configure_mih): chunk widths from the most significant bits down, the largest precomputed probe weight and the row count when configured. No row: ccvec.hamming_neighbours scans.';

DROP FUNCTION ccvec.mih_candidates(bigint, integer);

-- The search function of a layout, generated from its chunk widths: one branch per chunk, an index
-- scan on the chunk = any probe value, the values from the chunk's mask set at its weight.
CREATE OR REPLACE FUNCTION ccvec.mih_make_candidates(p_widths integer[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    c record;
    branches text[] := '{}';
BEGIN
    FOR c IN SELECT * FROM ccvec.mih_chunks(p_widths) LOOP
        -- a weight of -1 (or above the layout's masks) finds no mask set: the chunk probes nothing
        branches := branches || format(
            'SELECT identifier, phash FROM ccvec.image_feature WHERE ((phash >> %1$s) & %2$s) = ANY (ARRAY(
                 SELECT ((p_phash >> %1$s) & %2$s) # m FROM ccvec.mih_mask_set s, unnest(s.masks) m
                 WHERE s.bits = %3$s AND s.weight = p_weights[%4$s]))', c.shift, c.mask, c.bits, c.chunk);
    END LOOP;
    EXECUTE format(
        'CREATE OR REPLACE FUNCTION ccvec.mih_candidates(p_phash bigint, p_weights integer[])
         RETURNS TABLE (identifier uuid, phash bigint) LANGUAGE sql STABLE AS $f$ %s $f$',
        array_to_string(branches, ' UNION ALL '));
END $$;
COMMENT ON FUNCTION ccvec.mih_make_candidates(integer[]) IS
    'Generate ccvec.mih_candidates(bigint, integer[]) for the chunk layout of widths p_widths (its indexes and ccvec.mih_mask_set must exist: ccvec.configure_mih() builds them, then calls this).';

CREATE FUNCTION ccvec.mih_make_plan() RETURNS void
LANGUAGE sql AS $$
    DELETE FROM ccvec.mih_plan;
    INSERT INTO ccvec.mih_plan (radius, weights, probes)
    SELECT r.radius, w.weights, ccvec.mih_probe_count(c.widths, w.weights)
    FROM ccvec.mih_config c
    CROSS JOIN generate_series(0, 64) r(radius)
    CROSS JOIN LATERAL (SELECT ccvec.mih_thresholds(c.widths, r.radius) AS weights) w
    WHERE (SELECT max(t) FROM unnest(w.weights) t) <= c.max_weight;
$$;
COMMENT ON FUNCTION ccvec.mih_make_plan() IS
    'Fill ccvec.mih_plan for the layout in ccvec.mih_config: each radius 0..64 whose per-chunk weights the layout''s masks cover, with those weights and their probe count. Called by ccvec.configure_mih().';

-- 0021's layout function, with mask sets and the plan.
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
    DELETE FROM ccvec.mih_mask_set;
    FOR w IN SELECT DISTINCT unnest(widths) LOOP
        INSERT INTO ccvec.mih_mask_set (bits, weight, masks)
        WITH RECURSIVE m(mask, weight, top) AS (
            SELECT 0::bigint, 0, -1
            UNION ALL
            SELECT m.mask | (1::bigint << b), m.weight + 1, b
            FROM m, generate_series(0, w - 1) b
            WHERE b > m.top AND m.weight < max_weight
        )
        SELECT w, t, array_agg(m.mask ORDER BY m.weight, m.mask)
        FROM m JOIN generate_series(0, max_weight) t ON m.weight <= t
        GROUP BY t;
    END LOOP;
    FOR c IN SELECT * FROM ccvec.mih_chunks(widths) LOOP
        EXECUTE format('CREATE INDEX image_feature_mih_%s ON ccvec.image_feature (((phash >> %s) & %s)) INCLUDE (phash, identifier)',
                       c.chunk - 1, c.shift, c.mask);
    END LOOP;
    PERFORM ccvec.mih_make_candidates(widths);
    DELETE FROM ccvec.mih_config;
    INSERT INTO ccvec.mih_config (widths, max_weight, rows_at_configure)
    VALUES (widths, max_weight, (SELECT count(*) FROM ccvec.image_feature));
    PERFORM ccvec.mih_make_plan();
    ANALYZE ccvec.image_feature;
    ANALYZE ccvec.mih_mask_set;
END $$;

COMMENT ON FUNCTION ccvec.configure_mih(integer, integer) IS
    'Re-chunk multi-index hashing into p_chunks (1..16) chunks of near-equal width: recreates the chunk expression indexes on ccvec.image_feature, precomputes ccvec.mih_mask_set up to the largest weight whose masks for the widest chunk number at most p_max_masks, regenerates ccvec.mih_candidates() for the layout, records it in ccvec.mih_config and the probe plan of every radius in ccvec.mih_plan and analyzes image_feature. Rebuilds indexes over the whole table: run it after loading, not per query.';

-- A layout already in place gets its plan and a search function over the mask sets (its indexes stay).
SELECT ccvec.mih_make_plan();
SELECT ccvec.mih_make_candidates(widths) FROM ccvec.mih_config;
ANALYZE ccvec.mih_mask_set;

-- One statement: the plan row of the radius when probing is cheaper than a scan (a probe costs
-- ccvec.mih_probe_cost() rows), its candidates checked and de-duplicated; otherwise the scan. The
-- generic plan is planned once per session (and again after the tables it reads are analyzed);
-- measured in docs/benchmarks.md ("Hamming range search by chunk count").
CREATE OR REPLACE FUNCTION ccvec.hamming_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE sql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
    WITH plan AS MATERIALIZED (
        SELECT p.weights
        FROM ccvec.mih_plan p, ccvec.mih_config c
        WHERE p.radius = ccvec.check_radius(p_radius)
          AND p.probes * ccvec.mih_probe_cost()
              <= greatest(c.rows_at_configure,
                          (SELECT reltuples FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass))
    )
    SELECT m.identifier, ccvec.hamming(m.phash, p_phash)
    FROM plan CROSS JOIN LATERAL ccvec.mih_candidates(p_phash, plan.weights) m
    WHERE ccvec.hamming(m.phash, p_phash) <= p_radius
    GROUP BY m.identifier, m.phash
    UNION ALL
    SELECT f.identifier, ccvec.hamming(f.phash, p_phash)
    FROM ccvec.image_feature f
    WHERE ccvec.check_radius(p_radius) IS NOT NULL AND NOT EXISTS (SELECT FROM plan)
      AND ccvec.hamming(f.phash, p_phash) <= p_radius
$$;
COMMENT ON FUNCTION ccvec.hamming_neighbours(bigint, integer) IS
    'Every image whose pHash is within p_radius bits of p_phash (0 to 64; VC001 otherwise, from ccvec.check_radius), with the distance; exact, the same rows as a brute-force scan (the query''s own image included). Probes the multi-index hash indexes at the radius''s ccvec.mih_plan weights when ccvec.configure_mih() has run and that is cheaper than a scan, else scans ccvec.image_feature.';
