DROP FUNCTION IF EXISTS ccvec.duplicate_regroup(bigint, uuid[]);
DROP FUNCTION IF EXISTS ccvec.derived_signs(real, real, real, real, real, real, smallint, real, real);
DROP FUNCTION IF EXISTS ccvec.canonical_order(text[]);
DROP FUNCTION IF EXISTS ccvec.duplicate_edges(bigint, uuid[]);
DROP TABLE IF EXISTS ccvec.duplicate_edge;
DROP FUNCTION IF EXISTS ccvec.hamming_neighbours_dihedral(bigint, integer);
DROP FUNCTION IF EXISTS ccvec.phash_dihedral(bigint);
DROP FUNCTION IF EXISTS ccvec.phash_transpose(bigint);
DROP FUNCTION IF EXISTS ccvec.put_image_cue(uuid, double precision, double precision, double precision, double precision, integer);
DROP TABLE IF EXISTS ccvec.image_cue;
DELETE FROM ccvec.duplicate_member;
ALTER TABLE ccvec.duplicate_member DROP COLUMN transform;
ALTER TABLE ccvec.duplicate_member DROP CONSTRAINT duplicate_member_matched_by_check;
ALTER TABLE ccvec.duplicate_member ADD CONSTRAINT duplicate_member_matched_by_check
    CHECK (matched_by IN ('canonical', 'phash', 'embedding'));
ALTER TABLE ccvec.duplicate_member ALTER COLUMN distance SET NOT NULL;
ALTER TABLE ccvec.duplicate_run DROP COLUMN link, DROP COLUMN k, DROP COLUMN dihedral;

-- restore 0003's leader clustering
-- Assign up to p_limit images without a group, best candidates for canonical first: each joins the
-- nearest canonical within the radius (or, failing that, the most similar canonical by embedding
-- when the run sets a cosine threshold), or becomes the canonical of a new group. The same step
-- serves a full build (from empty) and incremental additions. Returns the number assigned.
-- The embedding path uses ccvec.nearest() from the graph migration (HNSW when indexed).
CREATE FUNCTION ccvec.assign_duplicates(p_run_id bigint, p_limit integer)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.duplicate_run;
    rec record;
    best record;
    q halfvec;
    n integer := 0;
BEGIN
    SELECT * INTO run FROM ccvec.duplicate_run WHERE id = p_run_id;
    FOR rec IN EXECUTE format(
        'SELECT f.identifier, f.phash FROM ccvec.image_feature f
         LEFT JOIN ccvec.catalog c ON c.identifier = f.identifier
         LEFT JOIN ccvec.provider_class pc ON pc.provider = c.provider
         WHERE NOT EXISTS (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier)
         ORDER BY %s LIMIT %s', ccvec.canonical_order_sql(run.prefer), p_limit)
    LOOP
        SELECT d.group_id, nb.distance, NULL::real AS similarity, 'phash' AS matched_by INTO best
        FROM ccvec.hamming_neighbours(rec.phash, run.radius) nb
        JOIN ccvec.duplicate_member d ON d.identifier = nb.identifier AND d.canonical
        ORDER BY nb.distance, d.group_id
        LIMIT 1;
        IF NOT FOUND AND run.cosine IS NOT NULL THEN
            SELECT e.embedding INTO q FROM ccvec.image_embedding e
            WHERE e.model = run.model AND e.identifier = rec.identifier;
            IF q IS NOT NULL THEN
                SELECT d.group_id, ccvec.hamming(f.phash, rec.phash) AS distance, nb.similarity,
                       'embedding' AS matched_by INTO best
                FROM ccvec.nearest(run.model, q, 10, rec.identifier) nb
                JOIN ccvec.duplicate_member d ON d.identifier = nb.identifier AND d.canonical
                JOIN ccvec.image_feature f ON f.identifier = nb.identifier
                WHERE nb.similarity >= run.cosine
                ORDER BY nb.similarity DESC, d.group_id
                LIMIT 1;
            END IF;
        END IF;
        IF best.group_id IS NOT NULL THEN
            INSERT INTO ccvec.duplicate_member
            VALUES (rec.identifier, best.group_id, false, best.distance, best.similarity, best.matched_by, p_run_id);
        ELSE
            INSERT INTO ccvec.duplicate_member VALUES (rec.identifier, rec.identifier, true, 0, NULL, 'canonical', p_run_id);
        END IF;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;
