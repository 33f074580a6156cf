-- One batched neighbour search for the kNN graph and for near-duplicate edges (issues 17 and 11).
--
-- Both run ccvec.knn_candidates (one LATERAL HNSW query per image, one SQL call per batch of
-- images) from several connections at once (ccvec.db.run_batches). Near-duplicate edges no longer
-- probe the pHash index 8 times per image: the dihedral Hamming rule is evaluated on the image's
-- embedding neighbours (ccvec.phash_match), which costs one HNSW query instead of ~6,000 btree
-- probes. Images without an embedding of the run's model, and runs without embeddings, keep the
-- exact multi-index-hashing probes. The recall of a graph is measured in one pass over the vectors.

-- The nearest dihedral transform of a's pHash to b's: (distance, transform), ties to the identity
-- and then by name, as ccvec.hamming_neighbours_dihedral orders them.
CREATE FUNCTION ccvec.phash_match(a bigint, b bigint, p_dihedral boolean)
RETURNS TABLE (distance integer, transform text)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT bit_count((t.phash # b)::bit(64))::integer, t.transform
    FROM ccvec.phash_dihedral(a) t
    WHERE p_dihedral OR t.transform = 'identity'
    ORDER BY 1, t.transform = 'identity' DESC, t.transform
    LIMIT 1
$$;
COMMENT ON FUNCTION ccvec.phash_match(bigint, bigint, boolean) IS
    'Hamming distance from pHash a, under its nearest dihedral transform (only the identity when p_dihedral is false), to pHash b, and that transform.';

-- Images with a pHash but no embedding of p_model: while there are any, dedup probes the pHash
-- index for every image (an embedded newcomer must still find them), as before this migration.
CREATE FUNCTION ccvec.unembedded_count(p_model text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.image_feature f
    WHERE NOT EXISTS (SELECT 1 FROM ccvec.image_embedding e WHERE e.model = p_model AND e.identifier = f.identifier)
$$;
COMMENT ON FUNCTION ccvec.unembedded_count(text) IS
    'Images with a pHash and no embedding of model p_model: when any, dedup finds pHash edges by exact probes for every image.';

-- Edges of the given images. With embeddings: each image's k nearest (HNSW at ef_search max(k, 64):
-- near-duplicates are the easiest neighbours to find; measured in docs/neardup.md; the batched search of
-- the graph build), kept when the pHash rule (within the radius under a dihedral transform,
-- evaluated from the lower identifier's side so that both directions agree) or the cosine rule
-- holds. With p_probe (the catalog has images without an embedding) or a run without embeddings:
-- exact pHash probes (multi-index hashing) as well, as ccvec.duplicate_edges does.
CREATE FUNCTION ccvec.duplicate_edges_batch(p_run bigint, p_ids uuid[], p_probe boolean)
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

-- Recall@k of a kNN run on a sample: the share of each sampled image's exact k nearest that its
-- edges hold. One pass over the model's vectors (each read once, compared with every sampled
-- image) instead of one sequential scan per sampled image; only vectors at least as near as the
-- image's own k-th edge can be among its exact k nearest, so the rest are dropped on the way.
CREATE FUNCTION ccvec.knn_recall(p_run bigint, p_sample uuid[])
RETURNS TABLE (found bigint, expected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.knn_run;
BEGIN
    SELECT * INTO run FROM ccvec.knn_run WHERE id = p_run;
    RETURN QUERY EXECUTE format(
        'WITH s AS MATERIALIZED (
             SELECT q.identifier, q.embedding::halfvec(%1$s) AS v,
                    coalesce((SELECT max(1 - g.similarity::float8) + 1e-4 FROM ccvec.knn_edge g
                              WHERE g.run_id = $1 AND g.identifier = q.identifier
                              HAVING count(*) >= $3), 2) AS reach
             FROM ccvec.image_embedding q WHERE q.model = %2$L AND q.identifier = ANY ($2)),
         near AS (
             SELECT s.identifier, e.identifier AS neighbour, e.v <=> s.v AS distance
             FROM (SELECT identifier, embedding::halfvec(%1$s) AS v FROM ccvec.image_embedding
                   WHERE model = %2$L) e
             JOIN s ON (e.v <=> s.v) <= s.reach AND e.identifier <> s.identifier),
         exact AS (
             SELECT identifier, neighbour FROM (
                 SELECT near.*, row_number() OVER (PARTITION BY identifier ORDER BY distance, neighbour) AS rk
                 FROM near) r
             WHERE rk <= $3)
         SELECT count(g.neighbour), count(*)
         FROM exact x LEFT JOIN ccvec.knn_edge g
           ON g.run_id = $1 AND g.identifier = x.identifier AND g.neighbour = x.neighbour',
        ccvec.model_dim(run.model), run.model)
    USING p_run, p_sample, run.k;
END $$;
COMMENT ON FUNCTION ccvec.knn_recall(bigint, uuid[]) IS
    'Recall@k of kNN run p_run on the sampled images: (exact k-nearest found among their edges, exact k-nearest in all), by one exact pass over the model''s vectors.';
