-- The edges and groups this migration undid are not restored: the next dedup finds them again.
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
        SELECT p.a, p.b, CASE WHEN m.distance <= run.radius THEN m.distance END,
               CASE WHEN m.distance <= run.radius THEN m.transform END,
               CASE WHEN p.similarity >= run.cosine THEN p.similarity END
        FROM (SELECT least(c.identifier, c.neighbour) AS a, greatest(c.identifier, c.neighbour) AS b,
                     (1 - c.distance)::real AS similarity
              FROM ccvec.knn_candidates(run.model, p_ids, run.k, greatest(run.k, 64)) c) p
        JOIN ccvec.image_feature fa ON fa.identifier = p.a
        JOIN ccvec.image_feature fb ON fb.identifier = p.b
        CROSS JOIN LATERAL ccvec.phash_match(fa.phash, fb.phash, run.dihedral) m
        WHERE m.distance <= run.radius OR p.similarity >= run.cosine;
    END IF;
    IF cardinality(probed) > 0 AND run.dihedral THEN
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, nb.transform, NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours_dihedral(q.phash, run.radius) nb
        WHERE q.identifier = ANY (probed) AND nb.identifier <> q.identifier;
    ELSIF cardinality(probed) > 0 THEN
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, 'identity', NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours(q.phash, run.radius) nb
        WHERE q.identifier = ANY (probed) AND nb.identifier <> q.identifier;
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
    'Find and store the direct near-duplicate matches of the given images under the run''s settings: the pHash and cosine rules on each image''s k nearest embeddings (one batched HNSW search); exact pHash probes too when p_probe or the run has no cosine rule. Returns the number of edges written.';
DROP FUNCTION ccvec.phash_has_detail(bigint);
