-- The queries ccvec/neardup.py, ccvec/scores.py and their CLI ran as inline SQL, as functions
-- (issue 16): Python calls them with a plain SELECT. Same query text as before; the read-only ones
-- are STABLE, non-strict SQL functions the planner inlines, so plans do not change.

-- ---------------------------------------------------------------- near-duplicate search

CREATE FUNCTION ccvec.feature_rows() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    estimate bigint;
BEGIN
    SELECT reltuples::bigint INTO estimate FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass;
    IF estimate IS NULL OR estimate < 0 THEN  -- never analysed: small enough to count
        RETURN (SELECT count(*) FROM ccvec.image_feature);
    END IF;
    RETURN estimate;
END $$;
COMMENT ON FUNCTION ccvec.feature_rows() IS
    'Rows of ccvec.image_feature from the planner''s estimate (an exact count only when the table was never analysed): the MIH chunk choice needs the order of magnitude, and count(*) over 500M rows costs minutes.';

CREATE FUNCTION ccvec.mih_layout() RETURNS TABLE (rows_at_configure bigint, chunks integer)
LANGUAGE sql STABLE AS $$
    SELECT c.rows_at_configure, cardinality(c.widths) FROM ccvec.mih_config c
$$;
COMMENT ON FUNCTION ccvec.mih_layout() IS
    'The catalog size and chunk count of the current MIH layout (no row before configure_mih): whether to re-chunk.';

CREATE FUNCTION ccvec.neardup_neighbours(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer)
LANGUAGE sql STABLE AS $$
    SELECT n.identifier, n.distance FROM ccvec.hamming_neighbours(p_phash, p_radius) n
    ORDER BY n.distance, n.identifier
$$;
COMMENT ON FUNCTION ccvec.neardup_neighbours(bigint, integer) IS
    'hamming_neighbours(p_phash, p_radius) nearest first (ties by identifier): the rows `ccvec similar --phash` lists.';

CREATE FUNCTION ccvec.neardup_neighbours_dihedral(p_phash bigint, p_radius integer)
RETURNS TABLE (identifier uuid, distance integer, transform text)
LANGUAGE sql STABLE AS $$
    SELECT n.identifier, n.distance, n.transform FROM ccvec.hamming_neighbours_dihedral(p_phash, p_radius) n
    ORDER BY n.distance, n.identifier
$$;
COMMENT ON FUNCTION ccvec.neardup_neighbours_dihedral(bigint, integer) IS
    'hamming_neighbours_dihedral(p_phash, p_radius) nearest first (ties by identifier), with the transform that matched.';

CREATE FUNCTION ccvec.image_phash(p_identifier uuid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT phash FROM ccvec.image_feature WHERE identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.image_phash(uuid) IS
    'The pHash (signed bigint) of a loaded image; NULL when it has no features: the query of a search by identifier.';

CREATE FUNCTION ccvec.catalog_titles(p_ids uuid[]) RETURNS TABLE (identifier uuid, title text)
LANGUAGE sql STABLE AS $$
    SELECT c.identifier, coalesce(c.title, c.url) FROM ccvec.catalog c WHERE c.identifier = ANY(p_ids)
$$;
COMMENT ON FUNCTION ccvec.catalog_titles(uuid[]) IS
    'Title (else URL) of each of p_ids in the catalog: the label column of search results.';

-- ---------------------------------------------------------------- duplicate groups

CREATE FUNCTION ccvec.embedding_count(p_model text) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.image_embedding WHERE model = p_model
$$;
COMMENT ON FUNCTION ccvec.embedding_count(text) IS
    'Number of images with an embedding of model p_model: dedup, the graph and the loader need it (an HNSW index, a graph need at least two).';

CREATE FUNCTION ccvec.duplicate_last_run()
RETURNS TABLE (radius integer, cosine real, model text, prefer text[], link real, k integer, dihedral boolean)
LANGUAGE sql STABLE AS $$
    SELECT r.radius, r.cosine, r.model, r.prefer, r.link, r.k, r.dihedral FROM ccvec.duplicate_run r
    ORDER BY r.id DESC LIMIT 1
$$;
COMMENT ON FUNCTION ccvec.duplicate_last_run() IS
    'Settings of the latest dedup run (no row before the first): other settings mean a rebuild.';

CREATE FUNCTION ccvec.duplicate_clear() RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    DELETE FROM ccvec.duplicate_member;
    TRUNCATE ccvec.duplicate_edge;
END $$;
COMMENT ON FUNCTION ccvec.duplicate_clear() IS
    'Discards every duplicate group and edge (runs stay): the start of a rebuild.';

CREATE FUNCTION ccvec.duplicate_run_start(p_radius integer, p_cosine double precision, p_model text,
                                          p_prefer text[], p_link double precision, p_k integer,
                                          p_dihedral boolean)
RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.duplicate_run (radius, cosine, model, prefer, link, k, dihedral)
    VALUES (p_radius, p_cosine, p_model, p_prefer, p_link, p_k, p_dihedral) RETURNING id
$$;
COMMENT ON FUNCTION ccvec.duplicate_run_start(integer, double precision, text, text[], double precision, integer, boolean) IS
    'Records a new dedup run with its settings and returns its id (edges and members point to it).';

CREATE FUNCTION ccvec.duplicates_grouped() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM ccvec.duplicate_member)
$$;
COMMENT ON FUNCTION ccvec.duplicates_grouped() IS
    'Whether any image has a duplicate group yet: a run then regroups only the components new images touch.';

CREATE FUNCTION ccvec.duplicate_ungrouped() RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT f.identifier FROM ccvec.image_feature f WHERE NOT EXISTS
    (SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier) ORDER BY 1
$$;
COMMENT ON FUNCTION ccvec.duplicate_ungrouped() IS
    'Loaded images without a duplicate group, in identifier order: the work list of a dedup run.';

CREATE FUNCTION ccvec.duplicate_run_finish(p_run bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    UPDATE ccvec.duplicate_run SET finished_at = now() WHERE id = p_run
$$;
COMMENT ON FUNCTION ccvec.duplicate_run_finish(bigint) IS
    'Stamps a dedup run finished (an unfinished run was interrupted).';

CREATE FUNCTION ccvec.duplicate_member_count() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM ccvec.duplicate_member
$$;
COMMENT ON FUNCTION ccvec.duplicate_member_count() IS
    'Images with a duplicate group (singletons included): the report''s total, and what --rebuild would discard.';

CREATE FUNCTION ccvec.duplicate_totals() RETURNS TABLE (groups bigint, duplicates numeric)
LANGUAGE sql STABLE AS $$
    SELECT count(*), coalesce(sum(g.size - 1), 0) FROM ccvec.duplicate_group g
$$;
COMMENT ON FUNCTION ccvec.duplicate_totals() IS
    'Groups with more than one member, and their members that are not canonical: the dedup summary.';

CREATE FUNCTION ccvec.duplicate_size_histogram() RETURNS TABLE (size_range text, groups bigint)
LANGUAGE sql STABLE AS $$
    SELECT bucket, count(*) FROM (SELECT CASE WHEN size <= 5 THEN size::text
    WHEN size <= 10 THEN '6-10' WHEN size <= 100 THEN '11-100' ELSE '>100' END AS bucket,
    min(size) OVER (PARTITION BY 1) FROM ccvec.duplicate_group) g GROUP BY bucket
    ORDER BY min(length(bucket)), bucket
$$;
COMMENT ON FUNCTION ccvec.duplicate_size_histogram() IS
    'Groups per size bucket (2..5, 6-10, 11-100, >100), smallest first: the dedup report''s histogram.';

CREATE FUNCTION ccvec.duplicate_largest(p_top bigint) RETURNS TABLE (group_id uuid, size bigint, max_distance integer)
LANGUAGE sql STABLE AS $$
    SELECT g.group_id, g.size, g.max_distance FROM ccvec.duplicate_group g
    ORDER BY g.size DESC, g.group_id LIMIT p_top
$$;
COMMENT ON FUNCTION ccvec.duplicate_largest(bigint) IS
    'The p_top largest duplicate groups (all when NULL) with their pHash spread: the dedup report''s list.';

-- ---------------------------------------------------------------- web ranks

CREATE FUNCTION ccvec.web_rank_clear(p_kind text) RETURNS void
LANGUAGE sql VOLATILE AS $$
    DELETE FROM ccvec.web_rank WHERE kind = p_kind
$$;
COMMENT ON FUNCTION ccvec.web_rank_clear(text) IS
    'Deletes the host or domain ranks of kind p_kind: the start of a release load (the new rows follow by COPY in the same transaction).';

CREATE FUNCTION ccvec.web_rank_record_release(p_kind text, p_source text, p_rows bigint, p_max_pos bigint)
RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.web_rank_release (kind, source, rows, max_pos)
    VALUES (p_kind, p_source, p_rows, p_max_pos)
    ON CONFLICT (kind) DO UPDATE SET source = EXCLUDED.source, rows = EXCLUDED.rows,
    max_pos = EXCLUDED.max_pos, loaded_at = now()
$$;
COMMENT ON FUNCTION ccvec.web_rank_record_release(text, text, bigint, bigint) IS
    'Records which file the ranks of kind p_kind came from, their row count and lowest position (the scale web_rank_score divides by).';

-- ---------------------------------------------------------------- scores of one image

CREATE FUNCTION ccvec.explain_score(p_identifier uuid)
RETURNS TABLE (popularity real, provenance text, support integer, authority real, visual real,
               domain real, prior real, web_source text)
LANGUAGE sql STABLE AS $$
    SELECT s.popularity, s.popularity_provenance, s.popularity_support, s.authority, s.visual_authority,
    s.domain_authority, s.prior_authority, s.web_source FROM ccvec.image_score s WHERE s.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_score(uuid) IS
    'One image''s popularity (with provenance and support) and authority with its parts (no row before refresh): `ccvec scores`.';

CREATE FUNCTION ccvec.explain_catalog(p_identifier uuid)
RETURNS TABLE (provider text, url text, meta_data jsonb)
LANGUAGE sql STABLE AS $$
    SELECT c.provider, coalesce(c.foreign_landing_url, c.url), c.meta_data FROM ccvec.catalog c
    WHERE c.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_catalog(uuid) IS
    'One image''s provider, landing page (else URL) and meta_data: where its popularity metric comes from.';

CREATE FUNCTION ccvec.explain_metric(p_identifier uuid)
RETURNS TABLE (metric text, raw_value double precision, percentile double precision,
               value_at_percentile double precision, constant double precision)
LANGUAGE sql STABLE AS $$
    SELECT o.metric, o.raw_value, m.percentile, m.value_at_percentile, m.constant
    FROM ccvec.observed_popularity o JOIN ccvec.catalog c USING (identifier)
    JOIN ccvec.popularity_metric m ON m.provider = c.provider WHERE o.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_metric(uuid) IS
    'One image''s observed popularity metric and its provider''s standardisation constants (no row when inferred or none).';

CREATE FUNCTION ccvec.explain_neighbours(p_identifier uuid)
RETURNS TABLE (neighbour uuid, similarity real, popularity double precision)
LANGUAGE sql STABLE AS $$
    SELECT e.neighbour, e.similarity, p.popularity FROM ccvec.knn_current e
    LEFT JOIN ccvec.popularity_source p ON p.identifier = e.neighbour
    WHERE e.identifier = p_identifier ORDER BY e.rank
$$;
COMMENT ON FUNCTION ccvec.explain_neighbours(uuid) IS
    'One image''s kNN neighbours, nearest first, with their popularity: what an inferred popularity averages.';

CREATE FUNCTION ccvec.explain_visualrank(p_identifier uuid)
RETURNS TABLE (rank double precision, score real, iterations integer, residual double precision, nodes integer)
LANGUAGE sql STABLE AS $$
    SELECT v.rank, v.score, r.iterations, r.residual, r.nodes FROM ccvec.visual_rank v
    JOIN ccvec.visualrank_run r ON r.id = v.run_id WHERE v.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_visualrank(uuid) IS
    'One image''s VisualRank (stationary probability and percentile) and the convergence of the run that computed it.';

CREATE FUNCTION ccvec.explain_host(p_identifier uuid)
RETURNS TABLE (host_rev text, source text, host_pos bigint, domain_rev text, domain_pos bigint)
LANGUAGE sql STABLE AS $$
    SELECT w.host_rev, w.source, h.harmonic_pos, d.host_rev, d.harmonic_pos FROM ccvec.web_authority w
    LEFT JOIN ccvec.web_rank h ON h.kind = 'host' AND h.host_rev = w.host_rev
    LEFT JOIN ccvec.web_rank d ON d.kind = 'domain' AND d.host_rev = ccvec.reversed_domain(w.host_rev)
    WHERE w.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_host(uuid) IS
    'One image''s host and domain (reversed) with their harmonic-centrality positions: the parts of its domain authority.';

CREATE FUNCTION ccvec.explain_novelty(p_identifier uuid)
RETURNS TABLE (against text, novelty real, detail text)
LANGUAGE sql STABLE AS $$
    SELECT 'within the collection', n.novelty,
    format('mean kNN distance %s', round(n.distance::numeric, 3))
    FROM ccvec.image_novelty n WHERE n.identifier = p_identifier
    UNION ALL SELECT 'against ' || r.name, r.novelty, r.reference FROM ccvec.reference_novelty r
    WHERE r.identifier = p_identifier
$$;
COMMENT ON FUNCTION ccvec.explain_novelty(uuid) IS
    'One image''s novelty within the collection and against each reference set, with what it was measured from.';

CREATE FUNCTION ccvec.score_summary()
RETURNS TABLE (images bigint, observed bigint, inferred bigint, visual bigint, tags bigint)
LANGUAGE sql STABLE AS $$
    SELECT count(*), count(*) FILTER (WHERE popularity_provenance = 'observed'),
    count(*) FILTER (WHERE popularity_provenance = 'inferred'),
    count(*) FILTER (WHERE visual_authority IS NOT NULL),
    (SELECT count(*) FROM ccvec.inferred_tags) FROM ccvec.image_score
$$;
COMMENT ON FUNCTION ccvec.score_summary() IS
    'Images scored, with observed and inferred popularity and with VisualRank, and inferred tags: the line `ccvec refresh` prints.';
