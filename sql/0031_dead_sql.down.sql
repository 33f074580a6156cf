-- Back to 0019's ccvec.phash_match and 0008's ccvec.duplicate_edges.

CREATE OR REPLACE FUNCTION ccvec.phash_match(a bigint, b bigint, p_dihedral boolean)
RETURNS TABLE (distance integer, transform text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bit_count((t.phash # b)::bit(64))::integer, t.transform
    FROM ccvec.phash_dihedral(a) t
    WHERE p_dihedral OR t.transform = 'identity'
    ORDER BY 1, t.transform = 'identity' DESC, t.transform
    LIMIT 1
$$;

CREATE FUNCTION ccvec.duplicate_edges(p_run bigint, p_ids uuid[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.duplicate_run;
    n integer;
BEGIN
    SELECT * INTO run FROM ccvec.duplicate_run WHERE id = p_run;
    CREATE TEMP TABLE IF NOT EXISTS de_found (a uuid, b uuid, distance integer, transform text,
                                              similarity real) ON COMMIT DROP;
    IF run.dihedral THEN
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, nb.transform, NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours_dihedral(q.phash, run.radius) nb
        WHERE q.identifier = ANY (p_ids) AND nb.identifier <> q.identifier;
    ELSE
        INSERT INTO de_found
        SELECT least(q.identifier, nb.identifier), greatest(q.identifier, nb.identifier),
               nb.distance, 'identity', NULL::real
        FROM ccvec.image_feature q
        CROSS JOIN LATERAL ccvec.hamming_neighbours(q.phash, run.radius) nb
        WHERE q.identifier = ANY (p_ids) AND nb.identifier <> q.identifier;
    END IF;
    IF run.cosine IS NOT NULL AND EXISTS (SELECT 1 FROM ccvec.image_embedding e
                                          WHERE e.model = run.model AND e.identifier = ANY (p_ids)) THEN
        INSERT INTO de_found
        SELECT least(c.identifier, c.neighbour), greatest(c.identifier, c.neighbour),
               NULL, NULL, (1 - c.distance)::real
        FROM ccvec.knn_candidates(run.model, p_ids, run.k, greatest(2 * run.k, 64)) c
        WHERE 1 - c.distance >= run.cosine;
    END IF;
    INSERT INTO ccvec.duplicate_edge (a, b, distance, transform, similarity)
    SELECT a, b, min(distance),
           (array_agg(transform ORDER BY distance NULLS LAST, transform = 'identity' DESC, transform))[1],
           max(similarity)
    FROM de_found
    GROUP BY a, b
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
COMMENT ON FUNCTION ccvec.duplicate_edges(bigint, uuid[]) IS
    'Find and store the direct near-duplicate matches of the given images under the run''s settings.';
