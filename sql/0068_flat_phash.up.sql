-- Pictures without detail share a pHash (docs/neardup.md, "What the default rule gets wrong").
-- A pHash bit is set where one of the 64 lowest DCT values lies above their median, so a picture
-- with detail has exactly 32 bits set: the median of 64 distinct values splits them 32 / 32. A flat
-- or smooth picture (a solid colour, a blank scan, a gradient, a clear sky, a 1x1 pixel) has tied
-- values, mostly zeros, and another count: every one of those measured hashes to
-- 0x8000000000000000 (a 40x30 stripe pattern to 0xaa00000000000000), so all of them matched one
-- another by pHash and were grouped as copies. Among the 7,632 images of bench/neardup.py (both
-- shared collections and their 17 edits each) every hash but one has 32 bits set, and that one is in
-- no pHash match, so the near-duplicate figures do not move. Such a hash now matches nothing by
-- pHash; the picture is grouped by the cosine rule only (a solid red image and a 1x1 red pixel:
-- cosine 0.977, still one group). The stored pHash stays imagehash's, bit for bit.
--
-- Groups made before: the pHash edges of such images are dropped (an edge that also met the cosine
-- rule keeps that), and the groups they were in are undone, so the next `ccvec run` or `ccvec
-- dedup` groups those images again by the rule above (they count as ungrouped).

CREATE FUNCTION ccvec.phash_has_detail(p_phash bigint) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT bit_count(p_phash::bit(64)) = 32 $$;
COMMENT ON FUNCTION ccvec.phash_has_detail(bigint) IS
    'True when pHash p_phash has 32 bits set, as the hash of any picture with detail has (its 64 DCT values split evenly at their median); a flat or smooth picture (solid colour, blank scan, gradient) has tied values and another count. Near-duplicate matching uses the pHash rule only between hashes with detail.';

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

DELETE FROM ccvec.duplicate_member m
WHERE m.group_id IN (SELECT d.group_id FROM ccvec.duplicate_member d
                     JOIN ccvec.image_feature f USING (identifier)
                     WHERE NOT ccvec.phash_has_detail(f.phash));
DELETE FROM ccvec.duplicate_edge e
USING ccvec.image_feature fa, ccvec.image_feature fb
WHERE fa.identifier = e.a AND fb.identifier = e.b AND e.similarity IS NULL
  AND NOT (ccvec.phash_has_detail(fa.phash) AND ccvec.phash_has_detail(fb.phash));
UPDATE ccvec.duplicate_edge e SET distance = NULL, transform = NULL
FROM ccvec.image_feature fa, ccvec.image_feature fb
WHERE fa.identifier = e.a AND fb.identifier = e.b AND e.distance IS NOT NULL
  AND NOT (ccvec.phash_has_detail(fa.phash) AND ccvec.phash_has_detail(fb.phash));
