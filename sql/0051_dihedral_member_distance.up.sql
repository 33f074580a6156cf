-- A member of a duplicate group matched by pHash under a dihedral transform (a mirrored or rotated
-- copy) recorded the plain distance of the two hashes (28-32 bits for a photo and its mirror), so
-- the report showed "pHash distance 28" for a copy found at distance 4, and `ccvec dedup --report`
-- called a distance past the radius an embedding match. It now records the distance it matched at
-- (duplicate_edge.distance, under duplicate_member.transform); the plain distance stays for the
-- canonical, embedding and group members. Rows already stored are corrected below.

CREATE OR REPLACE FUNCTION ccvec.duplicate_regroup(p_run bigint, p_ids uuid[])
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
    -- a pHash match: the distance it matched at, under its transform (else the plain distance)
    SELECT c.node, k.node, c.node = k.node, coalesce(e.distance, ccvec.hamming(c.phash, k.phash)),
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
    'Regroup the edge-connected components of the given images (all when NULL): average linkage over direct matches, then a canonical per group; a member matched by pHash records the distance under the dihedral transform it matched at (transform), others the plain pHash distance to the canonical.';

UPDATE ccvec.duplicate_member d SET distance = e.distance
FROM ccvec.duplicate_edge e
WHERE d.matched_by = 'phash' AND e.distance IS NOT NULL
  AND e.a = least(d.identifier, d.group_id) AND e.b = greatest(d.identifier, d.group_id)
  AND d.distance IS DISTINCT FROM e.distance;

-- The report says how such a copy matched: its transform, beside the distance ("mirrored copy").
DROP FUNCTION ccvec.report_duplicates(uuid[]);
CREATE FUNCTION ccvec.report_duplicates(p_ids uuid[] DEFAULT NULL)
RETURNS TABLE (group_id uuid, identifier uuid, canonical boolean, distance integer, similarity real,
               matched_by text, group_size integer, transform text)
LANGUAGE sql STABLE
-- joins of the scope with itself: hash joins (a nested loop over the scope is quadratic)
SET enable_nestloop = off AS $$
    WITH members AS MATERIALIZED (
        SELECT d.* FROM ccvec.report_scope(p_ids) s JOIN ccvec.duplicate_member d USING (identifier)
    ),
    sizes AS (
        SELECT g.group_id, (SELECT count(*) FROM ccvec.duplicate_member d WHERE d.group_id = g.group_id)::integer AS n
        FROM (SELECT DISTINCT m.group_id FROM members m) g
    )
    SELECT m.group_id, m.identifier, m.canonical, m.distance, m.similarity, m.matched_by, z.n, m.transform
    FROM members m JOIN sizes z ON z.group_id = m.group_id
    WHERE z.n > 1
    ORDER BY m.group_id, m.canonical DESC, m.distance, m.identifier
$$;
COMMENT ON FUNCTION ccvec.report_duplicates(uuid[]) IS
    'Members in the scope of near-duplicate groups of two or more (a group with one member in the scope too, when the others were loaded from other sources): each member''s pHash distance (and embedding similarity) to the canonical, group_size, the group''s members in the whole catalog, and transform, the flip or rotation a pHash match was found under (identity: none).';
