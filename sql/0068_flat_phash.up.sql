-- Pictures without detail share a pHash (docs/neardup.md, "What the default rule gets wrong").
-- A pHash bit is set where one of the 64 lowest DCT values lies strictly above their median, so at
-- most 32 bits are set, and exactly 32 when no values tie at the median. A flat or smooth picture
-- (a solid colour, a blank scan, a gradient, a clear sky, a flag, a 1x1 pixel) has DCT values that
-- are almost all zero: nearly every value ties, and the hash keeps 1 to 4 bits
-- (0x8000000000000000 for any solid colour; 1 to 4 bits measured for gradients, skies, stripes and
-- flags, the French and Italian flags alike), so all of them matched one another by pHash and were
-- grouped as copies. A hash with 8 bits set or fewer (56 or more of
-- the 64 values tie) now matches nothing by pHash; such a picture is grouped by the cosine rule only
-- (a solid red image and a 1x1 red pixel: cosine 0.98, still one group). Pictures with detail keep
-- their pHash matches: every one of the 7,632 images of bench/neardup.py (both shared collections
-- and 17 edits of each) but one has 32 bits set, and that one (1 bit) is in no pHash match; a
-- mirror-symmetric picture (a logo, an icon) ties half its values and keeps 12 to 26 bits. The
-- stored pHash stays imagehash's, bit for bit.
--
-- Groups made before: the pHash edges of such images are dropped (an edge that also met the cosine
-- rule keeps that), and the groups they were in are undone, so the next `ccvec run` or `ccvec
-- dedup` groups those images again by the rule above (they count as ungrouped). The flat images are
-- found in one scan of image_feature; the rest reads the indexes.

CREATE FUNCTION ccvec.phash_has_detail(p_phash bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT bit_count(p_phash::bit(64)) > 8 $$;
COMMENT ON FUNCTION ccvec.phash_has_detail(bigint) IS
    'True when pHash p_phash has more than 8 bits set. A bit is set where one of its 64 DCT values lies above their median: a flat or smooth picture (solid colour, blank scan, gradient, sky, flag) has values that almost all tie at zero, and 1 to 4 bits; photographs have 32, mirror-symmetric pictures 12 to 26. Near-duplicate matching uses the pHash rule only between hashes with detail.';

CREATE OR REPLACE FUNCTION ccvec.duplicate_edges_batch(p_run bigint, p_ids uuid[], p_probe boolean)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.duplicate_run;
    probed uuid[] := CASE WHEN p_probe THEN p_ids ELSE '{}' END;
    n integer;
BEGIN
    SELECT * INTO run FROM ccvec.duplicate_run WHERE id = p_run;
    CREATE TEMP TABLE IF NOT EXISTS de_found (a uuid, b uuid, distance integer, transform text,
                                              similarity real) ON COMMIT DROP;
    IF run.cosine IS NULL THEN
        probed := p_ids;
    ELSE
        INSERT INTO de_found
        SELECT p.a, p.b, CASE WHEN m.distance <= run.radius AND d.detailed THEN m.distance END,
               CASE WHEN m.distance <= run.radius AND d.detailed THEN m.transform END,
               CASE WHEN p.similarity >= run.cosine THEN p.similarity END
        FROM (SELECT least(c.identifier, c.neighbour) AS a, greatest(c.identifier, c.neighbour) AS b,
                     (1 - c.distance)::real AS similarity
              FROM ccvec.knn_candidates(run.model, p_ids, run.k, greatest(run.k, 64)) c) p
        JOIN ccvec.image_feature fa ON fa.identifier = p.a
        JOIN ccvec.image_feature fb ON fb.identifier = p.b
        CROSS JOIN LATERAL ccvec.phash_match(fa.phash, fb.phash, run.dihedral) m
        CROSS JOIN LATERAL (SELECT ccvec.phash_has_detail(fa.phash) AND ccvec.phash_has_detail(fb.phash)) d(detailed)
        WHERE (m.distance <= run.radius AND d.detailed) OR p.similarity >= run.cosine;
    END IF;
    IF cardinality(probed) > 0 AND run.dihedral THEN
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, nb.transform, NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours_dihedral(q.phash, run.radius) nb
        JOIN ccvec.image_feature f ON f.identifier = nb.identifier AND ccvec.phash_has_detail(f.phash)
        WHERE q.identifier = ANY (probed) AND nb.identifier <> q.identifier AND ccvec.phash_has_detail(q.phash);
    ELSIF cardinality(probed) > 0 THEN
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, 'identity', NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours(q.phash, run.radius) nb
        JOIN ccvec.image_feature f ON f.identifier = nb.identifier AND ccvec.phash_has_detail(f.phash)
        WHERE q.identifier = ANY (probed) AND nb.identifier <> q.identifier AND ccvec.phash_has_detail(q.phash);
    END IF;
    -- in (a, b) order, so that concurrent batches take row locks in one order (no deadlock)
    INSERT INTO ccvec.duplicate_edge (a, b, distance, transform, similarity)
    SELECT a, b, min(distance),
           (array_agg(transform ORDER BY distance NULLS LAST, transform = 'identity' DESC, transform))[1],
           max(similarity)
    FROM de_found
    GROUP BY a, b
    ORDER BY a, b
    ON CONFLICT (a, b) DO UPDATE SET
        distance = least(ccvec.duplicate_edge.distance, EXCLUDED.distance),
        transform = CASE WHEN EXCLUDED.distance < ccvec.duplicate_edge.distance
                              OR ccvec.duplicate_edge.distance IS NULL
                         THEN EXCLUDED.transform ELSE ccvec.duplicate_edge.transform END,
        similarity = greatest(ccvec.duplicate_edge.similarity, EXCLUDED.similarity);
    GET DIAGNOSTICS n = ROW_COUNT;
    TRUNCATE de_found;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.duplicate_edges_batch(bigint, uuid[], boolean) IS
    'Find and store the direct near-duplicate matches of the given images under the run''s settings: the pHash rule (only between hashes with detail, ccvec.phash_has_detail) and the cosine rule on each image''s k nearest embeddings (one batched HNSW search); exact pHash probes too when p_probe or the run has no cosine rule. Returns the number of edges written.';

CREATE TEMP TABLE flat_phash ON COMMIT DROP AS
SELECT identifier FROM ccvec.image_feature WHERE NOT ccvec.phash_has_detail(phash);
ANALYZE flat_phash;
DELETE FROM ccvec.duplicate_member m
WHERE m.group_id IN (SELECT d.group_id FROM ccvec.duplicate_member d JOIN flat_phash USING (identifier));
DELETE FROM ccvec.duplicate_edge e USING flat_phash f WHERE e.a = f.identifier AND e.similarity IS NULL;
DELETE FROM ccvec.duplicate_edge e USING flat_phash f WHERE e.b = f.identifier AND e.similarity IS NULL;
UPDATE ccvec.duplicate_edge e SET distance = NULL, transform = NULL
FROM flat_phash f WHERE e.a = f.identifier AND e.distance IS NOT NULL;
UPDATE ccvec.duplicate_edge e SET distance = NULL, transform = NULL
FROM flat_phash f WHERE e.b = f.identifier AND e.distance IS NOT NULL;
DROP TABLE flat_phash;
