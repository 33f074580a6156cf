-- Duplicate groups that do not depend on load order or on which member is canonical.
--
-- 1. Edges: a pair of images is a direct match when one image's pHash, or the pHash of one of its
--    dihedral transforms (mirror, flips, rotations by 90/180/270, transposes), is within the radius
--    of the other's, or their embeddings have cosine >= the threshold. Edges are stored.
-- 2. Groups: average linkage over the edges, where the linkage of two groups is the share of their
--    member pairs that are direct matches; groups merge while it is >= the run's `link`. Merged in
--    rounds of reciprocal best matches (RAC), ties broken by identifier order, never by row order.
-- 3. Canonical: chosen per group afterwards, by a preference that puts originals first (cues from
--    ccvec.image_cue, measured at load time), so changing the canonical never changes membership.

-- Signs of being a derivative, measured once per image by the loader (ccvec/cues.py).
CREATE TABLE ccvec.image_cue (
    identifier   uuid PRIMARY KEY,
    border       real NOT NULL,   -- share of the frame in flat bands at the edges
    detail       real NOT NULL,   -- fine-scale energy at native / half resolution (low: upscaled)
    clipped      real NOT NULL,   -- share of pixels at 0 or 255 in some channel
    chroma       real NOT NULL,   -- mean colourfulness (0: greyscale)
    jpeg_quality smallint         -- estimated libjpeg quality, NULL when not a JPEG
);
COMMENT ON TABLE ccvec.image_cue IS
    'Per-image signs of being a derivative (borders, upscaling, clipping, greyscale, heavy JPEG), '
    'measured at load time; used to choose the canonical image of a duplicate group.';

-- The loader's write: one image's cues, replaced when the image is reloaded with new content.
CREATE FUNCTION ccvec.put_image_cue(p_identifier uuid, p_border double precision,
                                    p_detail double precision, p_clipped double precision,
                                    p_chroma double precision, p_jpeg_quality integer)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO ccvec.image_cue VALUES (p_identifier, p_border, p_detail, p_clipped, p_chroma, p_jpeg_quality)
    ON CONFLICT (identifier) DO UPDATE SET
        border = EXCLUDED.border, detail = EXCLUDED.detail, clipped = EXCLUDED.clipped,
        chroma = EXCLUDED.chroma, jpeg_quality = EXCLUDED.jpeg_quality
$$;
COMMENT ON FUNCTION ccvec.put_image_cue(uuid, double precision, double precision, double precision, double precision, integer) IS
    'Store (or replace) one image''s derivative cues; called by the loader.';

-- ---------------------------------------------------------------- dihedral pHash probes

-- The 8x8 bit matrix of a pHash transposed (bit [r, c] is bit 63 - 8r - c): three delta swaps.
-- Transposing the 32x32 grid transposes its DCT, so this is the exact hash of the transposed image.
CREATE FUNCTION ccvec.phash_transpose(h bigint) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE t bigint;
BEGIN
    t := (h # (h >> 7)) & x'00AA00AA00AA00AA'::bigint;
    h := h # t # (t << 7);
    t := (h # (h >> 14)) & x'0000CCCC0000CCCC'::bigint;
    h := h # t # (t << 14);
    t := (h # (h >> 28)) & x'00000000F0F0F0F0'::bigint;
    RETURN h # t # (t << 28);
END $$;
COMMENT ON FUNCTION ccvec.phash_transpose(bigint) IS
    'pHash of the transposed image: the 8x8 DCT bit matrix transposed (exact).';

-- The hashes to probe for the eight dihedral transforms of an image, from its pHash alone.
-- Mirroring the 32x32 grid negates the DCT coefficients of odd horizontal frequency (flipping
-- rows: odd vertical frequency), so those bits flip; transposes are exact. The sign flips move the
-- median the bits are taken against, so a flipped hash differs from the true hash of the flipped
-- image by 3.4 bits on average (measured on 300 real images, docs/neardup.md); the transforms are
-- isometries of Hamming space, so distance(T(a), b) = distance(a, T^-1(b)) and every pair is found
-- from either side, which keeps incremental grouping equal to a rebuild.
CREATE FUNCTION ccvec.phash_dihedral(h bigint)
RETURNS TABLE (transform text, phash bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT v.transform, v.p
    FROM (SELECT ccvec.phash_transpose(h) AS t) tr,
    LATERAL (VALUES
        ('identity', h),
        ('mirror', h # x'5555555555555555'::bigint),
        ('flip', h # x'00FF00FF00FF00FF'::bigint),
        ('rot180', h # x'55AA55AA55AA55AA'::bigint),
        ('transpose', tr.t),
        ('rot90', tr.t # x'00FF00FF00FF00FF'::bigint),
        ('rot270', tr.t # x'5555555555555555'::bigint),
        ('antitranspose', tr.t # x'55AA55AA55AA55AA'::bigint)) AS v(transform, p)
$$;
COMMENT ON FUNCTION ccvec.phash_dihedral(bigint) IS
    'The pHash to probe for each of the 8 dihedral transforms (mirror, flips, rotations, transposes) of an image.';

-- Images within p_radius of p_phash or of one of its dihedral transforms: the nearest transform each.
CREATE FUNCTION ccvec.hamming_neighbours_dihedral(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer, transform text)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (n.identifier) n.identifier, n.distance, t.transform
    FROM ccvec.phash_dihedral(p_phash) t
    CROSS JOIN LATERAL ccvec.hamming_neighbours(t.phash, p_radius) n
    ORDER BY n.identifier, n.distance, t.transform = 'identity' DESC, t.transform
$$;
COMMENT ON FUNCTION ccvec.hamming_neighbours_dihedral(bigint, integer) IS
    'Images whose pHash is within p_radius of p_phash or of one of its dihedral transforms (flips, rotations).';

-- ---------------------------------------------------------------- runs, edges, groups

ALTER TABLE ccvec.duplicate_run
    ADD COLUMN link real CHECK (link > 0 AND link <= 1),  -- average-linkage threshold
    ADD COLUMN k integer CHECK (k > 0),                   -- embedding neighbours examined per image
    ADD COLUMN dihedral boolean NOT NULL DEFAULT false;   -- also probe flipped / rotated hashes
ALTER TABLE ccvec.duplicate_member DROP CONSTRAINT duplicate_member_matched_by_check;
ALTER TABLE ccvec.duplicate_member ALTER COLUMN distance DROP NOT NULL;
ALTER TABLE ccvec.duplicate_member ADD CONSTRAINT duplicate_member_matched_by_check
    CHECK (matched_by IN ('canonical', 'phash', 'embedding', 'group'));
ALTER TABLE ccvec.duplicate_member ADD COLUMN transform text;  -- dihedral transform of a pHash match

-- Direct matches (a < b): pHash distance under the nearest transform (NULL: not within the radius)
-- and embedding cosine (NULL: not embedded or not among the examined neighbours).
CREATE TABLE ccvec.duplicate_edge (
    a          uuid NOT NULL,
    b          uuid NOT NULL,
    distance   integer,
    transform  text,
    similarity real,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
CREATE INDEX duplicate_edge_b_idx ON ccvec.duplicate_edge (b);
COMMENT ON TABLE ccvec.duplicate_edge IS
    'Direct near-duplicate matches (a < b) of the current dedup settings: pHash (any dihedral transform) or embedding.';

-- Edges of the given images to every image: pHash probes (dihedral when the run says so) and the
-- run's k embedding neighbours at or above its cosine threshold. Returns the number of edges written.
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

-- Canonical preference keys -> ORDER BY over dc_cand (see ccvec.duplicate_regroup).
CREATE FUNCTION ccvec.canonical_order(p_prefer text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    key text;
    parts text[] := '{}';
BEGIN
    FOREACH key IN ARRAY p_prefer LOOP
        parts := parts || CASE key
            WHEN 'original'  THEN 'derived ASC'
            WHEN 'largest'   THEN 'pixels DESC'
            WHEN 'pixels'    THEN 'pixels DESC'
            WHEN 'provider'  THEN 'provider_rank ASC'
            WHEN 'oldest'    THEN 'created_on ASC NULLS LAST'
            WHEN 'newest'    THEN 'created_on DESC NULLS LAST'
            ELSE NULL END;
        IF parts[cardinality(parts)] IS NULL THEN
            RAISE EXCEPTION 'unknown canonical preference %, use original, largest, provider, oldest or newest', key;
        END IF;
    END LOOP;
    RETURN array_to_string(parts || 'node'::text, ', ');
END $$;
COMMENT ON FUNCTION ccvec.canonical_order(text[]) IS
    'ORDER BY for choosing a group''s canonical image from preference keys (original, largest, provider, oldest, newest).';

-- How many signs of being a derivative an image shows, against the median member of its group
-- (most members of a duplicate group are same-size copies, so the median stands for the original):
-- flat bands 5 points of the frame above the median (letterbox, added border), top-octave detail
-- below half the median (upscaled), clipped pixels 8 points above the median (brightness, contrast,
-- saturation pushed), estimated JPEG quality below 50, greyscale in a group with colour.
-- Thresholds from bench/neardup.py (docs/neardup.md).
CREATE FUNCTION ccvec.derived_signs(p_border real, p_med_border real, p_detail real, p_med_detail real,
                                    p_clipped real, p_med_clipped real, p_jpeg smallint,
                                    p_chroma real, p_max_chroma real)
RETURNS integer LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((p_border > p_med_border + 0.05)::integer, 0)
         + coalesce((p_detail < 0.5 * p_med_detail)::integer, 0)
         + coalesce((p_clipped > p_med_clipped + 0.08)::integer, 0)
         + coalesce((p_jpeg < 50)::integer, 0)
         + coalesce((p_chroma < 2 AND p_max_chroma >= 8)::integer, 0)
$$;
COMMENT ON FUNCTION ccvec.derived_signs(real, real, real, real, real, real, smallint, real, real) IS
    'Count of signs that an image is a derivative, against its group''s median member (border, upscaled, clipped, heavy JPEG, greyscale).';

-- Regroup the connected components (over duplicate_edge) of the given images, or of every image
-- when p_ids is NULL: average linkage by RAC, then the canonical of each group. Members of other
-- components keep their rows. Returns the number of images (re)assigned.
CREATE FUNCTION ccvec.duplicate_regroup(p_run bigint, p_ids uuid[])
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.duplicate_run;
    t double precision;
    merged integer;
    n integer;
BEGIN
    SELECT * INTO run FROM ccvec.duplicate_run WHERE id = p_run;
    t := round(run.link::numeric, 6) - 1e-9;  -- real 0.55 is 0.5500000119: compare as written
    -- the nodes: the given images and everything reachable from them by edges
    CREATE TEMP TABLE dg_node (node uuid PRIMARY KEY) ON COMMIT DROP;
    IF p_ids IS NULL THEN
        INSERT INTO dg_node SELECT identifier FROM ccvec.image_feature;
    ELSE
        INSERT INTO dg_node
        WITH RECURSIVE reach(node) AS (
            SELECT DISTINCT unnest(p_ids)
            UNION
            SELECT nb.node FROM reach r
            CROSS JOIN LATERAL (SELECT e.b AS node FROM ccvec.duplicate_edge e WHERE e.a = r.node
                                UNION ALL
                                SELECT e.a FROM ccvec.duplicate_edge e WHERE e.b = r.node) nb
        )
        SELECT node FROM reach;
    END IF;
    -- integer ids in identifier order: the tie-break, independent of load order
    CREATE TEMP TABLE dg_id ON COMMIT DROP AS
    SELECT node, (row_number() OVER (ORDER BY node))::integer AS id FROM dg_node;
    ALTER TABLE dg_id ADD PRIMARY KEY (id);
    CREATE UNIQUE INDEX ON dg_id (node);
    ALTER TABLE dg_id ADD COLUMN label integer;
    UPDATE dg_id SET label = id;
    -- cluster-level links: x < y, number of direct matches between them (sizes in dg_size)
    CREATE TEMP TABLE dg_link ON COMMIT DROP AS
    SELECT ia.id AS x, ib.id AS y, 1::bigint AS e
    FROM ccvec.duplicate_edge d JOIN dg_id ia ON ia.node = d.a JOIN dg_id ib ON ib.node = d.b;
    UPDATE dg_link SET x = y, y = x WHERE x > y;
    CREATE TEMP TABLE dg_size ON COMMIT DROP AS SELECT id AS c, 1::bigint AS size FROM dg_id;
    ALTER TABLE dg_size ADD PRIMARY KEY (c);
    ANALYZE dg_id; ANALYZE dg_link; ANALYZE dg_size;
    LOOP
        CREATE TEMP TABLE dg_best ON COMMIT DROP AS
        SELECT DISTINCT ON (c) c, other, link
        FROM (SELECT l.x AS c, l.y AS other, l.e::double precision / (sx.size * sy.size) AS link
              FROM dg_link l JOIN dg_size sx ON sx.c = l.x JOIN dg_size sy ON sy.c = l.y
              UNION ALL
              SELECT l.y, l.x, l.e::double precision / (sx.size * sy.size)
              FROM dg_link l JOIN dg_size sx ON sx.c = l.x JOIN dg_size sy ON sy.c = l.y) both_ways
        ORDER BY c, link DESC, other;
        CREATE TEMP TABLE dg_merge ON COMMIT DROP AS
        SELECT b1.c AS keep, b1.other AS gone
        FROM dg_best b1 JOIN dg_best b2 ON b2.c = b1.other AND b2.other = b1.c
        WHERE b1.c < b1.other AND b1.link >= t;
        SELECT count(*) INTO merged FROM dg_merge;
        IF merged = 0 THEN
            DROP TABLE dg_best; DROP TABLE dg_merge;
            EXIT;
        END IF;
        ALTER TABLE dg_merge ADD PRIMARY KEY (gone);
        ANALYZE dg_merge;
        UPDATE dg_id n SET label = m.keep FROM dg_merge m WHERE n.label = m.gone;
        UPDATE dg_size s SET size = s.size + g.size
        FROM dg_merge m JOIN dg_size g ON g.c = m.gone WHERE s.c = m.keep;
        DELETE FROM dg_size s USING dg_merge m WHERE s.c = m.gone;
        -- re-aggregate; drop links of finished clusters (best link below the threshold: average
        -- linkage is reducible, so their links to merged clusters stay below it)
        CREATE TEMP TABLE dg_done ON COMMIT DROP AS SELECT c FROM dg_best WHERE link < t;
        ALTER TABLE dg_done ADD PRIMARY KEY (c);
        ANALYZE dg_done;
        CREATE TEMP TABLE dg_next ON COMMIT DROP AS
        SELECT least(x2, y2) AS x, greatest(x2, y2) AS y, sum(e)::bigint AS e
        FROM (SELECT coalesce(mx.keep, l.x) AS x2, coalesce(my.keep, l.y) AS y2, l.e
              FROM dg_link l
              LEFT JOIN dg_merge mx ON mx.gone = l.x
              LEFT JOIN dg_merge my ON my.gone = l.y
              WHERE NOT EXISTS (SELECT 1 FROM dg_done f WHERE f.c = l.x)
                AND NOT EXISTS (SELECT 1 FROM dg_done f WHERE f.c = l.y)) z
        WHERE x2 <> y2
        GROUP BY 1, 2;
        ANALYZE dg_next;
        DROP TABLE dg_done;
        DROP TABLE dg_link; DROP TABLE dg_best; DROP TABLE dg_merge;
        ALTER TABLE dg_next RENAME TO dg_link;
    END LOOP;
    DROP TABLE dg_link; DROP TABLE dg_size;

    -- the canonical of each group: by the run's preference, over group-relative cues
    CREATE TEMP TABLE dc_cand ON COMMIT DROP AS
    WITH m AS (
        SELECT i.node, i.label, f.phash, f.width::bigint * f.height AS pixels,
               cu.border, cu.detail, cu.clipped, cu.chroma, cu.jpeg_quality,
               c.created_on, ccvec.source_class_rank(pc.source_class) AS provider_rank
        FROM dg_id i
        JOIN ccvec.image_feature f ON f.identifier = i.node
        LEFT JOIN ccvec.image_cue cu ON cu.identifier = i.node
        LEFT JOIN ccvec.catalog c ON c.identifier = i.node
        LEFT JOIN ccvec.provider_class pc ON pc.provider = c.provider
    )
    , med AS (
        SELECT label, percentile_cont(0.5) WITHIN GROUP (ORDER BY border)::real AS border,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY detail)::real AS detail,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY clipped)::real AS clipped,
               max(chroma) AS max_chroma
        FROM m GROUP BY label
    )
    SELECT m.node, m.label, m.phash, m.pixels, m.created_on, m.provider_rank,
           ccvec.derived_signs(m.border, med.border, m.detail, med.detail, m.clipped, med.clipped,
                               m.jpeg_quality, m.chroma, med.max_chroma) AS derived
    FROM m JOIN med USING (label);
    CREATE TEMP TABLE dc_canon ON COMMIT DROP AS SELECT node, label, phash FROM dc_cand LIMIT 0;
    EXECUTE format('INSERT INTO dc_canon SELECT DISTINCT ON (label) node, label, phash FROM dc_cand
                    ORDER BY label, %s', ccvec.canonical_order(run.prefer));
    DELETE FROM ccvec.duplicate_member d USING dg_node n WHERE d.identifier = n.node;
    INSERT INTO ccvec.duplicate_member (identifier, group_id, canonical, distance, similarity,
                                        matched_by, run_id, transform)
    SELECT c.node, k.node, c.node = k.node, ccvec.hamming(c.phash, k.phash),
           CASE WHEN c.node <> k.node THEN e.similarity END,
           CASE WHEN c.node = k.node THEN 'canonical'
                WHEN e.distance IS NOT NULL THEN 'phash'
                WHEN e.similarity IS NOT NULL THEN 'embedding'
                ELSE 'group' END,
           p_run,
           CASE WHEN c.node <> k.node THEN e.transform END
    FROM dc_cand c
    JOIN dc_canon k ON k.label = c.label
    LEFT JOIN ccvec.duplicate_edge e ON e.a = least(c.node, k.node) AND e.b = greatest(c.node, k.node);
    GET DIAGNOSTICS n = ROW_COUNT;
    DROP TABLE dc_cand; DROP TABLE dc_canon; DROP TABLE dg_id; DROP TABLE dg_node;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.duplicate_regroup(bigint, uuid[]) IS
    'Regroup the edge-connected components of the given images (all when NULL): average linkage over direct matches, then a canonical per group.';

