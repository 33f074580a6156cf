-- Semantic neighbours: HNSW per model, the kNN graph, clusters, and what is inferred from them.

-- Tunable numbers that views read (so tuning needs no migration).
CREATE TABLE ccvec.setting (
    name  text PRIMARY KEY,
    value double precision NOT NULL,
    note  text
);
INSERT INTO ccvec.setting (name, value, note) VALUES
    ('inferred_tags.min_support', 2, 'neighbours that must carry a tag before it is inferred'),
    ('inferred_tags.min_score', 0.3, 'similarity-weighted share of the neighbourhood carrying the tag'),
    ('neighbourhood_popularity.min_support', 1, 'neighbours with a popularity needed for an estimate');

CREATE FUNCTION ccvec.setting(p_name text) RETURNS double precision
LANGUAGE sql STABLE AS $$ SELECT value FROM ccvec.setting WHERE name = p_name $$;

-- ---------------------------------------------------------------- HNSW per model

CREATE FUNCTION ccvec.model_dim(p_model text) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer;
BEGIN
    SELECT dim INTO d FROM ccvec.model WHERE name = p_model;
    IF d IS NULL THEN
        RAISE EXCEPTION 'no model named %', p_model;
    END IF;
    RETURN d;
END $$;

CREATE FUNCTION ccvec.embedding_index_name(p_model text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT 'image_embedding_hnsw_' || substr(md5(p_model), 1, 12) $$;

-- A partial HNSW index on (embedding::halfvec(dim)) for one model: the pgvector way to index one
-- column holding several dimensions. Queries must use the same cast and model predicate.
CREATE FUNCTION ccvec.create_embedding_index(p_model text, p_m integer DEFAULT 16,
                                             p_ef_construction integer DEFAULT 64)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE name text := ccvec.embedding_index_name(p_model);
BEGIN
    EXECUTE format(
        'CREATE INDEX IF NOT EXISTS %I ON ccvec.image_embedding USING hnsw ((embedding::halfvec(%s)) halfvec_cosine_ops)
         WITH (m = %s, ef_construction = %s) WHERE model = %L',
        name, ccvec.model_dim(p_model), p_m, p_ef_construction, p_model);
    RETURN name;
END $$;

CREATE FUNCTION ccvec.drop_embedding_index(p_model text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('DROP INDEX IF EXISTS ccvec.%I', ccvec.embedding_index_name(p_model));
END $$;

CREATE FUNCTION ccvec.has_embedding_index(p_model text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT to_regclass('ccvec.' || ccvec.embedding_index_name(p_model)) IS NOT NULL
$$;

-- The p_k images nearest to p_query (cosine), through the model's HNSW index when it exists.
CREATE FUNCTION ccvec.nearest(p_model text, p_query halfvec, p_k integer, p_exclude uuid DEFAULT NULL)
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE d integer := ccvec.model_dim(p_model);
BEGIN
    RETURN QUERY EXECUTE format(
        'SELECT e.identifier, (1 - (e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)))::real
         FROM ccvec.image_embedding e
         WHERE e.model = %2$L AND e.identifier IS DISTINCT FROM $3
         ORDER BY e.embedding::halfvec(%1$s) <=> $1::halfvec(%1$s)
         LIMIT $2', d, p_model)
    USING p_query, p_k, p_exclude;
END $$;

CREATE FUNCTION ccvec.similar(p_identifier uuid, p_k integer DEFAULT 10,
                              p_model text DEFAULT 'efficientnet-lite0')
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE q halfvec;
BEGIN
    SELECT e.embedding INTO q FROM ccvec.image_embedding e
    WHERE e.model = p_model AND e.identifier = p_identifier;
    IF q IS NULL THEN
        RAISE EXCEPTION 'image % has no % embedding', p_identifier, p_model;
    END IF;
    RETURN QUERY SELECT * FROM ccvec.nearest(p_model, q, p_k, p_identifier);
END $$;

-- ---------------------------------------------------------------- the kNN graph

CREATE TABLE ccvec.knn_run (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model       text NOT NULL REFERENCES ccvec.model (name) ON DELETE CASCADE,
    k           integer NOT NULL CHECK (k BETWEEN 1 AND 1000),
    ef_search   integer NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    images      integer,
    recall      real,          -- recall@k against exact search on a sample
    recall_sample integer,
    is_current  boolean NOT NULL DEFAULT false
);
-- One current graph: what clusters, inferred tags and VisualRank read.
CREATE UNIQUE INDEX knn_run_one_current ON ccvec.knn_run (is_current) WHERE is_current;

CREATE TABLE ccvec.knn_edge (
    run_id     bigint NOT NULL REFERENCES ccvec.knn_run (id) ON DELETE CASCADE,
    identifier uuid NOT NULL,
    neighbour  uuid NOT NULL,
    rank       smallint NOT NULL,
    similarity real NOT NULL,
    PRIMARY KEY (run_id, identifier, neighbour)
);
CREATE INDEX knn_edge_neighbour_idx ON ccvec.knn_edge (run_id, neighbour);

CREATE VIEW ccvec.knn_current AS
SELECT e.identifier, e.neighbour, e.rank, e.similarity, r.model, e.run_id
FROM ccvec.knn_edge e JOIN ccvec.knn_run r ON r.id = e.run_id AND r.is_current;

-- The p_limit nearest images of each of p_ids (HNSW when indexed), as one statement per batch.
CREATE FUNCTION ccvec.knn_candidates(p_model text, p_ids uuid[], p_limit integer, p_ef_search integer)
RETURNS TABLE (identifier uuid, neighbour uuid, distance double precision)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('hnsw.ef_search', greatest(p_ef_search, p_limit + 1)::text, true);
    PERFORM set_config('hnsw.iterative_scan', 'strict_order', true);
    -- On small tables the planner would rather read every vector of the model and sort them per
    -- image (16 ms per image at 5k images, against 2 ms through HNSW): make it order by the index.
    PERFORM set_config('enable_seqscan', 'off', true);
    PERFORM set_config('enable_sort', 'off', true);
    RETURN QUERY EXECUTE format(
        'SELECT q.identifier, nb.identifier, nb.distance
         FROM ccvec.image_embedding q
         CROSS JOIN LATERAL (
             SELECT e.identifier, e.embedding::halfvec(%1$s) <=> q.embedding::halfvec(%1$s) AS distance
             FROM ccvec.image_embedding e
             WHERE e.model = %2$L AND e.identifier <> q.identifier
             ORDER BY e.embedding::halfvec(%1$s) <=> q.embedding::halfvec(%1$s)
             LIMIT $2) nb
         WHERE q.model = %2$L AND q.identifier = ANY ($1)', ccvec.model_dim(p_model), p_model)
    USING p_ids, p_limit;
END $$;

-- Edges of the given images: each one's k nearest.
CREATE FUNCTION ccvec.knn_insert(p_run bigint, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.knn_run;
    n integer;
BEGIN
    SELECT * INTO run FROM ccvec.knn_run WHERE id = p_run;
    INSERT INTO ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity)
    SELECT p_run, c.identifier, c.neighbour,
           row_number() OVER (PARTITION BY c.identifier ORDER BY c.distance, c.neighbour), (1 - c.distance)::real
    FROM ccvec.knn_candidates(run.model, p_ids, run.k, run.ef_search) c
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- New images into an existing graph: they get their own edges, and each becomes a neighbour of the
-- older images where it is nearer than their current k-th neighbour. Older images that should list
-- a newcomer are searched among the newcomer's p_reach * k nearest (reverse kNN is not symmetric,
-- but it is local): exact when every such image is that near, measured by bench/graph.py otherwise.
CREATE FUNCTION ccvec.knn_add(p_run bigint, p_ids uuid[], p_reach integer DEFAULT 3) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    run ccvec.knn_run;
    n integer;
BEGIN
    SELECT * INTO run FROM ccvec.knn_run WHERE id = p_run;
    n := ccvec.knn_insert(p_run, p_ids);
    -- candidate reverse edges: (older image v, newcomer x, similarity), from x's p_reach * k nearest
    CREATE TEMP TABLE knn_reverse ON COMMIT DROP AS
    SELECT c.neighbour AS v, c.identifier AS x, (1 - c.distance)::real AS similarity
    FROM ccvec.knn_candidates(run.model, p_ids, run.k * p_reach, run.ef_search) c
    WHERE NOT c.neighbour = ANY (p_ids);
    -- keep those nearer than v's current k-th neighbour (or where v has fewer than k)
    INSERT INTO ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity)
    SELECT p_run, r.v, r.x, 32767, r.similarity
    FROM knn_reverse r
    WHERE r.similarity > coalesce((SELECT min(e.similarity) FROM ccvec.knn_edge e
                                   WHERE e.run_id = p_run AND e.identifier = r.v
                                   HAVING count(*) >= run.k), -2)
    ON CONFLICT DO NOTHING;
    -- re-rank the lists that changed, keep the k best
    CREATE TEMP TABLE knn_reranked ON COMMIT DROP AS
    SELECT e.identifier, e.neighbour,
           row_number() OVER (PARTITION BY e.identifier ORDER BY e.similarity DESC, e.neighbour) AS rk
    FROM ccvec.knn_edge e
    WHERE e.run_id = p_run AND e.identifier IN (SELECT DISTINCT v FROM knn_reverse);
    DELETE FROM ccvec.knn_edge e USING knn_reranked r
    WHERE e.run_id = p_run AND e.identifier = r.identifier AND e.neighbour = r.neighbour AND r.rk > run.k;
    UPDATE ccvec.knn_edge e SET rank = r.rk FROM knn_reranked r
    WHERE e.run_id = p_run AND e.identifier = r.identifier AND e.neighbour = r.neighbour
      AND r.rk <= run.k AND e.rank <> r.rk;
    DROP TABLE knn_reranked;
    DROP TABLE knn_reverse;
    UPDATE ccvec.knn_run SET images = (SELECT count(DISTINCT identifier) FROM ccvec.knn_edge WHERE run_id = p_run)
    WHERE id = p_run;
    RETURN n;
END $$;

-- Exact k nearest (sequential scan, no index) for recall measurement.
CREATE FUNCTION ccvec.exact_nearest(p_model text, p_identifier uuid, p_k integer)
RETURNS TABLE (identifier uuid, similarity real)
LANGUAGE plpgsql STABLE AS $$
DECLARE q halfvec;
BEGIN
    SELECT e.embedding INTO q FROM ccvec.image_embedding e WHERE e.model = p_model AND e.identifier = p_identifier;
    RETURN QUERY
        SELECT e.identifier, (1 - (e.embedding <=> q))::real
        FROM ccvec.image_embedding e
        WHERE e.model = p_model AND e.identifier <> p_identifier
        ORDER BY e.embedding <=> q, e.identifier
        LIMIT p_k;
END $$;

-- ---------------------------------------------------------------- clusters

CREATE TABLE ccvec.cluster_run (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    knn_run    bigint NOT NULL REFERENCES ccvec.knn_run (id) ON DELETE CASCADE,
    method     text NOT NULL,
    sim        real NOT NULL CHECK (sim BETWEEN 0 AND 1),
    threshold  real NOT NULL,
    params     jsonb NOT NULL DEFAULT '{}',
    level      text NOT NULL DEFAULT 'default',
    created_at timestamptz NOT NULL DEFAULT now(),
    clusters   integer,
    singletons integer
);

CREATE TABLE ccvec.cluster_member (
    run_id     bigint NOT NULL REFERENCES ccvec.cluster_run (id) ON DELETE CASCADE,
    identifier uuid NOT NULL,
    cluster    integer NOT NULL,  -- 0 is the largest cluster of the run
    PRIMARY KEY (run_id, identifier)
);
CREATE INDEX cluster_member_cluster_idx ON ccvec.cluster_member (run_id, cluster);

-- The current label per image and level: the newest run of each level on the current graph.
CREATE VIEW ccvec.image_cluster AS
SELECT m.identifier, m.cluster, r.level, r.sim, r.method, r.id AS run_id
FROM ccvec.cluster_member m
JOIN ccvec.cluster_run r ON r.id = m.run_id
WHERE r.id IN (SELECT DISTINCT ON (cr.level) cr.id
               FROM ccvec.cluster_run cr JOIN ccvec.knn_run k ON k.id = cr.knn_run AND k.is_current
               ORDER BY cr.level, cr.id DESC);

-- The cosine threshold for a similarity index S in 0..1: S rescales the range of similarities the
-- graph holds, [lowest edge, 1], the way imagecluster's sim rescales [0, largest distance].
CREATE FUNCTION ccvec.cluster_threshold(p_knn_run bigint, p_sim real) RETURNS real
LANGUAGE sql STABLE AS $$
    SELECT (lo + p_sim * (1 - lo))::real
    FROM (SELECT coalesce(min(similarity), 0) AS lo FROM ccvec.knn_edge WHERE run_id = p_knn_run) s
$$;

-- The nodes of a graph run as a temp table cl_node(node, id, label) for the clustering functions:
-- integer ids (min-label propagation needs an ordered, cheap label type), every node its own label,
-- or all in one when p_one_cluster.
CREATE FUNCTION ccvec.cluster_nodes(p_knn_run bigint, p_one_cluster boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE cl_node ON COMMIT DROP AS
    SELECT identifier AS node, (row_number() OVER (ORDER BY identifier))::integer AS id
    FROM (SELECT DISTINCT identifier FROM ccvec.knn_edge WHERE run_id = p_knn_run) x;
    ALTER TABLE cl_node ADD COLUMN label integer;
    UPDATE cl_node SET label = CASE WHEN p_one_cluster THEN 1 ELSE id END;
    ALTER TABLE cl_node ADD PRIMARY KEY (id);
    CREATE UNIQUE INDEX ON cl_node (node);
END $$;

-- Store cl_node's labels as the run's clusters (0 = the largest), with counts, and drop cl_node.
CREATE FUNCTION ccvec.cluster_save(p_run bigint, p_params jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ccvec.cluster_member (run_id, identifier, cluster)
    SELECT p_run, n.node, (dense_rank() OVER (ORDER BY s.size DESC, n.label) - 1)::integer
    FROM cl_node n JOIN (SELECT label, count(*) AS size FROM cl_node GROUP BY label) s USING (label);
    UPDATE ccvec.cluster_run SET
        clusters = (SELECT count(DISTINCT label) FROM cl_node),
        singletons = (SELECT count(*) FROM (SELECT label FROM cl_node GROUP BY label HAVING count(*) = 1) x),
        params = params || p_params
    WHERE id = p_run;
    DROP TABLE cl_node;
END $$;

-- Label every image of the graph: components of the graph of edges with similarity >= threshold
-- (mutual edges only when p_mutual: a pair must list each other), found by min-label propagation
-- with pointer jumping. S = 0 puts everything in one cluster, S = 1 makes singletons.
CREATE FUNCTION ccvec.cluster_graph(p_knn_run bigint, p_sim real, p_mutual boolean DEFAULT true,
                                    p_level text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
    t real := ccvec.cluster_threshold(p_knn_run, p_sim);
    changed integer;
    rounds integer := 0;
BEGIN
    INSERT INTO ccvec.cluster_run (knn_run, method, sim, threshold, params, level)
    VALUES (p_knn_run, CASE WHEN p_mutual THEN 'mutual-knn-components' ELSE 'knn-components' END,
            p_sim, t, jsonb_build_object('mutual', p_mutual), p_level)
    RETURNING id INTO v_run;

    PERFORM ccvec.cluster_nodes(p_knn_run, p_sim <= 0);
    IF p_sim > 0 AND p_sim < 1 THEN
        CREATE TEMP TABLE cl_edge ON COMMIT DROP AS
        SELECT na.id AS a, nb.id AS b
        FROM ccvec.knn_edge e
        JOIN cl_node na ON na.node = e.identifier
        JOIN cl_node nb ON nb.node = e.neighbour
        WHERE e.run_id = p_knn_run AND e.similarity >= t
          AND (NOT p_mutual OR EXISTS (SELECT 1 FROM ccvec.knn_edge r WHERE r.run_id = p_knn_run
                                       AND r.identifier = e.neighbour AND r.neighbour = e.identifier));
        INSERT INTO cl_edge SELECT b, a FROM cl_edge;  -- undirected
        CREATE INDEX ON cl_edge (a);
        ANALYZE cl_node; ANALYZE cl_edge;
        LOOP
            UPDATE cl_node n SET label = m.label
            FROM (SELECT e.a, min(l.label) AS label FROM cl_edge e JOIN cl_node l ON l.id = e.b GROUP BY e.a) m
            WHERE n.id = m.a AND m.label < n.label;
            GET DIAGNOSTICS changed = ROW_COUNT;
            UPDATE cl_node n SET label = p.label FROM cl_node p WHERE n.label = p.id AND p.label < n.label;
            rounds := rounds + 1;
            EXIT WHEN changed = 0;
        END LOOP;
        DROP TABLE cl_edge;
    END IF;
    PERFORM ccvec.cluster_save(v_run, jsonb_build_object('rounds', rounds));
    RETURN v_run;
END $$;

-- Average-linkage agglomerative clustering on the kNN graph: the linkage of clusters A and B is
-- the mean similarity of the graph edges between them (pairs the graph does not hold are not
-- guessed). Merged in rounds by reciprocal nearest neighbours (RAC): every pair of clusters that
-- are each other's best match merges at once. The linkage is reducible (a merged cluster's linkage
-- to C is a weighted mean of its parts'), so rounds give the same clusters as merging one pair at
-- a time. Stops when no best match reaches the threshold for p_sim. S = 0 puts everything in one
-- cluster, S = 1 makes singletons. (Counting missing pairs as similarity 0 was measured too: much
-- worse on labelled photos, ARI 0.25 vs 0.49.)
CREATE FUNCTION ccvec.cluster_average(p_knn_run bigint, p_sim real, p_level text DEFAULT 'default')
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_run bigint;
    t real := ccvec.cluster_threshold(p_knn_run, p_sim);
    merged integer;
    rounds integer := 0;
BEGIN
    INSERT INTO ccvec.cluster_run (knn_run, method, sim, threshold, params, level)
    VALUES (p_knn_run, 'average-linkage-rac', p_sim, t, '{}', p_level)
    RETURNING id INTO v_run;

    PERFORM ccvec.cluster_nodes(p_knn_run, p_sim <= 0);

    IF p_sim > 0 AND p_sim < 1 THEN
        -- cluster-level links: (x, y) with the sum and count of the graph similarities between them
        CREATE TEMP TABLE ca_link ON COMMIT DROP AS
        SELECT least(na.id, nb.id) AS x, greatest(na.id, nb.id) AS y,
               max(e.similarity)::double precision AS w, 1::bigint AS c
        FROM ccvec.knn_edge e
        JOIN cl_node na ON na.node = e.identifier
        JOIN cl_node nb ON nb.node = e.neighbour
        WHERE e.run_id = p_knn_run AND na.id <> nb.id
        GROUP BY 1, 2;
        LOOP
            CREATE TEMP TABLE ca_best ON COMMIT DROP AS
            SELECT DISTINCT ON (c) c, other, link
            FROM (SELECT x AS c, y AS other, w / c AS link FROM ca_link
                  UNION ALL SELECT y, x, w / c FROM ca_link) both_ways
            ORDER BY c, link DESC, other;
            -- reciprocal best matches at or above the threshold merge
            CREATE TEMP TABLE ca_merge ON COMMIT DROP AS
            SELECT b1.c AS keep, b1.other AS gone
            FROM ca_best b1 JOIN ca_best b2 ON b2.c = b1.other AND b2.other = b1.c
            WHERE b1.c < b1.other AND b1.link >= t;
            SELECT count(*) INTO merged FROM ca_merge;
            rounds := rounds + 1;
            IF merged = 0 THEN
                DROP TABLE ca_best; DROP TABLE ca_merge;
                EXIT;
            END IF;
            UPDATE cl_node n SET label = m.keep FROM ca_merge m WHERE n.label = m.gone;
            -- relabel and re-aggregate the links; drop those of finished clusters (best link below the
            -- threshold: its links to a merged cluster are weighted means of links below the threshold,
            -- so it can never merge again)
            CREATE TEMP TABLE ca_next ON COMMIT DROP AS
            SELECT least(x2, y2) AS x, greatest(x2, y2) AS y, sum(w) AS w, sum(c) AS c
            FROM (SELECT coalesce(mx.keep, l.x) AS x2, coalesce(my.keep, l.y) AS y2, l.w, l.c
                  FROM ca_link l
                  LEFT JOIN ca_merge mx ON mx.gone = l.x
                  LEFT JOIN ca_merge my ON my.gone = l.y
                  WHERE NOT EXISTS (SELECT 1 FROM ca_best f WHERE f.link < t AND f.c IN (l.x, l.y))) z
            WHERE x2 <> y2
            GROUP BY 1, 2;
            DROP TABLE ca_link; DROP TABLE ca_best; DROP TABLE ca_merge;
            ALTER TABLE ca_next RENAME TO ca_link;
        END LOOP;
        DROP TABLE ca_link;
    END IF;
    PERFORM ccvec.cluster_save(v_run, jsonb_build_object('rounds', rounds));
    RETURN v_run;
END $$;

-- ---------------------------------------------------------------- inferred from neighbours

-- Tags an image's neighbours carry and it does not: score = similarity-weighted share of the
-- neighbourhood carrying the tag, support = how many neighbours carry it.
CREATE MATERIALIZED VIEW ccvec.inferred_tags AS
WITH neighbourhood AS (
    SELECT identifier, sum(similarity) AS total FROM ccvec.knn_current GROUP BY identifier
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour, e.similarity, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.knn_current e
    JOIN ccvec.catalog c ON c.identifier = e.neighbour
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
scored AS (
    SELECT c.identifier, c.tag, (sum(c.similarity) / n.total)::real AS score, count(*)::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier)
    GROUP BY c.identifier, c.tag, n.total
)
SELECT s.identifier, s.tag, s.score, s.support
FROM scored s
WHERE s.support >= ccvec.setting('inferred_tags.min_support')
  AND s.score >= ccvec.setting('inferred_tags.min_score')
  AND NOT EXISTS (
      SELECT 1 FROM ccvec.catalog own
      CROSS JOIN LATERAL jsonb_array_elements(
          CASE WHEN jsonb_typeof(own.tags) = 'array' THEN own.tags ELSE '[]'::jsonb END) AS o(tag)
      WHERE own.identifier = s.identifier AND lower(btrim(o.tag ->> 'name')) = s.tag)
WITH NO DATA;
CREATE UNIQUE INDEX inferred_tags_key ON ccvec.inferred_tags (identifier, tag);

-- Where observed popularity comes from: the catalog's column here; the scores migration points it
-- at ccvec's own standardised popularity.
CREATE VIEW ccvec.popularity_source AS
SELECT identifier, standardized_popularity AS popularity FROM ccvec.catalog
WHERE standardized_popularity IS NOT NULL;

-- Similarity-weighted mean standardised popularity of the neighbours that have one.
CREATE MATERIALIZED VIEW ccvec.neighbourhood_popularity AS
SELECT e.identifier,
       (sum(e.similarity * c.popularity) / sum(e.similarity))::real AS estimate,
       count(*)::integer AS support
FROM ccvec.knn_current e
JOIN ccvec.popularity_source c ON c.identifier = e.neighbour
GROUP BY e.identifier
HAVING count(*) >= ccvec.setting('neighbourhood_popularity.min_support') AND sum(e.similarity) > 0
WITH NO DATA;
CREATE UNIQUE INDEX neighbourhood_popularity_key ON ccvec.neighbourhood_popularity (identifier);
