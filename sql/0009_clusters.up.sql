-- Clusters people recognise: labels and medoids, ImageNet class predictions, calibrated inferred
-- tags, and novelty (an outlier score within the collection, and a score against a reference set).

INSERT INTO ccvec.setting (name, value, note) VALUES
    ('cluster_label.min_tag_share', 0.3, 'share of a cluster''s members that must carry a tag for it to name the cluster'),
    ('inferred_tags.min_score_tagged', 0.9, 'score an already-tagged image needs before it gets an extra tag'),
    ('novelty.k', 10, 'reference images averaged over by the reference-set novelty score')
ON CONFLICT (name) DO NOTHING;
UPDATE ccvec.setting SET value = 0.5,
    note = 'similarity-weighted share of the tagged neighbours carrying the tag (precision per band: docs/graph.md)'
WHERE name = 'inferred_tags.min_score';

-- ---------------------------------------------------------------- class predictions

-- Class names of a classifier head (ImageNet-1k for the default model), written by ccvec.
CREATE TABLE ccvec.class_name (
    model    text NOT NULL REFERENCES ccvec.model (name) ON DELETE CASCADE,
    class_id smallint NOT NULL,
    name     text NOT NULL,
    PRIMARY KEY (model, class_id)
);
COMMENT ON TABLE ccvec.class_name IS 'Names of the classes a model''s classifier head predicts (ImageNet-1k: WordNet lemmas).';

-- Top classes per image, computed from the stored embedding through the model's classifier head.
CREATE TABLE ccvec.image_class (
    model      text NOT NULL REFERENCES ccvec.model (name) ON DELETE CASCADE,
    identifier uuid NOT NULL,
    classes    smallint[] NOT NULL,  -- best first
    probs      real[] NOT NULL,      -- softmax probability of each
    PRIMARY KEY (model, identifier)
);
COMMENT ON TABLE ccvec.image_class IS 'Top-5 ImageNet classes per image and their probabilities (from the embedding and the model''s head).';

-- ---------------------------------------------------------------- cluster labels and medoids

CREATE TABLE ccvec.cluster_label (
    run_id  bigint NOT NULL REFERENCES ccvec.cluster_run (id) ON DELETE CASCADE,
    cluster integer NOT NULL,
    size    integer NOT NULL,
    label   text NOT NULL,
    source  text NOT NULL CHECK (source IN ('tags', 'classes', 'none')),
    medoid  uuid NOT NULL,
    PRIMARY KEY (run_id, cluster)
);
COMMENT ON TABLE ccvec.cluster_label IS 'Per cluster of a run: size, a short human-readable label, where it came from, and the medoid.';

-- The inferred tags, or none before the first `ccvec refresh` has populated the view.
CREATE FUNCTION ccvec.inferred_tags_if_ready() RETURNS TABLE (identifier uuid, tag text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF (SELECT ispopulated FROM pg_matviews WHERE schemaname = 'ccvec' AND matviewname = 'inferred_tags') THEN
        RETURN QUERY SELECT i.identifier, i.tag FROM ccvec.inferred_tags i;
    END IF;
END $$;
COMMENT ON FUNCTION ccvec.inferred_tags_if_ready() IS
    'Rows of ccvec.inferred_tags, or none while the view is not yet populated.';

-- Label every cluster of a run. Medoid: the member with the largest sum of graph similarities to
-- the other members (a singleton is its own). Label: the (up to two) tags, provider's or inferred,
-- carried by at least cluster_label.min_tag_share of the members; otherwise the two classes with
-- the largest summed probability over the members; otherwise 'cluster N'.
CREATE FUNCTION ccvec.label_clusters(p_run bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_knn bigint;
    v_model text;
    n integer;
BEGIN
    SELECT r.knn_run, k.model INTO v_knn, v_model
    FROM ccvec.cluster_run r JOIN ccvec.knn_run k ON k.id = r.knn_run WHERE r.id = p_run;
    DELETE FROM ccvec.cluster_label WHERE run_id = p_run;
    ANALYZE ccvec.cluster_member;  -- just written: plan the joins below with real counts
    INSERT INTO ccvec.cluster_label (run_id, cluster, size, label, source, medoid)
    WITH members AS (
        SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = p_run
    ),
    sizes AS (SELECT cluster, count(*)::integer AS size FROM members GROUP BY cluster),
    centrality AS (  -- joins on the tables (indexed, analysed), not on the CTE: hash joins at 1M
        SELECT ma.cluster, ma.identifier, sum(e.similarity) AS inner_sim
        FROM ccvec.cluster_member ma
        JOIN ccvec.knn_edge e ON e.run_id = v_knn AND e.identifier = ma.identifier
        JOIN ccvec.cluster_member mb ON mb.run_id = p_run AND mb.identifier = e.neighbour
                                    AND mb.cluster = ma.cluster
        WHERE ma.run_id = p_run
        GROUP BY ma.cluster, ma.identifier
    ),
    medoids AS (
        SELECT DISTINCT ON (cluster) cluster, identifier AS medoid
        FROM (SELECT cluster, identifier, inner_sim FROM centrality
              UNION ALL SELECT cluster, identifier, -1 FROM members) c
        ORDER BY cluster, inner_sim DESC, identifier
    ),
    image_tags AS (
        SELECT DISTINCT m.cluster, m.identifier, lower(btrim(t.tag ->> 'name')) AS tag
        FROM members m
        JOIN ccvec.catalog c ON c.identifier = m.identifier
        CROSS JOIN LATERAL jsonb_array_elements(
            CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
        WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
        UNION
        SELECT m.cluster, m.identifier, i.tag FROM members m JOIN ccvec.inferred_tags_if_ready() i USING (identifier)
    ),
    tag_votes AS (
        SELECT t.cluster, t.tag, count(*)::real / s.size AS share
        FROM image_tags t JOIN sizes s USING (cluster)
        GROUP BY t.cluster, t.tag, s.size
        HAVING count(*)::real / s.size >= ccvec.setting('cluster_label.min_tag_share')
    ),
    tag_labels AS (
        SELECT cluster, string_agg(tag, ' · ' ORDER BY share DESC, tag) AS label
        FROM (SELECT cluster, tag, share,
                     row_number() OVER (PARTITION BY cluster ORDER BY share DESC, tag) AS rk
              FROM tag_votes) v
        WHERE rk <= 2 GROUP BY cluster
    ),
    class_votes AS (
        SELECT m.cluster, p.class_id, sum(p.prob) AS mass
        FROM members m
        JOIN ccvec.image_class ic ON ic.model = v_model AND ic.identifier = m.identifier
        CROSS JOIN LATERAL unnest(ic.classes, ic.probs) AS p(class_id, prob)
        GROUP BY m.cluster, p.class_id
    ),
    class_labels AS (
        SELECT v.cluster, string_agg(cn.name, ' · ' ORDER BY v.mass DESC, cn.name) AS label
        FROM (SELECT cluster, class_id, mass,
                     row_number() OVER (PARTITION BY cluster ORDER BY mass DESC, class_id) AS rk
              FROM class_votes) v
        JOIN ccvec.class_name cn ON cn.model = v_model AND cn.class_id = v.class_id
        WHERE v.rk <= 2 GROUP BY v.cluster
    )
    SELECT p_run, s.cluster, s.size,
           coalesce(t.label, c.label, 'cluster ' || s.cluster),
           CASE WHEN t.label IS NOT NULL THEN 'tags' WHEN c.label IS NOT NULL THEN 'classes' ELSE 'none' END,
           md.medoid
    FROM sizes s
    JOIN medoids md USING (cluster)
    LEFT JOIN tag_labels t USING (cluster)
    LEFT JOIN class_labels c USING (cluster);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.label_clusters(bigint) IS
    'Fill ccvec.cluster_label for a cluster run: size, label (from tags, else class predictions) and medoid.';

-- What a person (or the HTML report) reads: the current clusters of every level, labelled.
CREATE VIEW ccvec.cluster_summary AS
SELECT r.level, l.run_id, l.cluster, l.label, l.size, l.medoid, l.source AS label_source,
       l.size = 1 AS singleton,
       l.size::real / sum(l.size) OVER (PARTITION BY l.run_id) AS share
FROM ccvec.cluster_label l
JOIN ccvec.cluster_run r ON r.id = l.run_id
WHERE l.run_id IN (SELECT DISTINCT run_id FROM ccvec.image_cluster);
COMMENT ON VIEW ccvec.cluster_summary IS
    'Current clusters per level: label, size, share of the collection, medoid; singletons included and flagged.';

-- ---------------------------------------------------------------- inferred tags, calibrated

-- Tags an image's neighbours carry: score = similarity-weighted share of the *tagged* neighbours
-- carrying the tag (untagged neighbours are no evidence either way), support = how many carry it.
-- Images without the tag get it from inferred_tags.min_score; images that already have tags only
-- from inferred_tags.min_score_tagged (0.9: strong evidence, measured separately in bench/clusters.py).
DROP MATERIALIZED VIEW ccvec.inferred_tags;
CREATE MATERIALIZED VIEW ccvec.inferred_tags AS
WITH own AS (
    SELECT c.identifier, lower(btrim(t.tag ->> 'name')) AS tag
    FROM ccvec.catalog c
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof(c.tags) = 'array' THEN c.tags ELSE '[]'::jsonb END) AS t(tag)
    WHERE coalesce(btrim(t.tag ->> 'name'), '') <> ''
),
tagged AS (SELECT DISTINCT identifier FROM own),
neighbourhood AS (
    SELECT e.identifier, sum(e.similarity) AS total
    FROM ccvec.knn_current e JOIN tagged t ON t.identifier = e.neighbour
    GROUP BY e.identifier
),
carried AS (
    SELECT DISTINCT e.identifier, e.neighbour, e.similarity, o.tag
    FROM ccvec.knn_current e JOIN own o ON o.identifier = e.neighbour
),
scored AS (
    SELECT c.identifier, c.tag, (sum(c.similarity) / n.total)::real AS score, count(*)::integer AS support
    FROM carried c JOIN neighbourhood n USING (identifier)
    GROUP BY c.identifier, c.tag, n.total
)
SELECT s.identifier, s.tag, s.score, s.support,
       EXISTS (SELECT 1 FROM tagged t WHERE t.identifier = s.identifier) AS already_tagged
FROM scored s
WHERE s.support >= ccvec.setting('inferred_tags.min_support')
  AND s.score >= CASE WHEN EXISTS (SELECT 1 FROM tagged t WHERE t.identifier = s.identifier)
                      THEN ccvec.setting('inferred_tags.min_score_tagged')
                      ELSE ccvec.setting('inferred_tags.min_score') END
  AND NOT EXISTS (SELECT 1 FROM own o WHERE o.identifier = s.identifier AND o.tag = s.tag)
WITH NO DATA;
CREATE UNIQUE INDEX inferred_tags_key ON ccvec.inferred_tags (identifier, tag);
COMMENT ON MATERIALIZED VIEW ccvec.inferred_tags IS
    'Tags inferred from the kNN neighbours: score = weighted share of tagged neighbours carrying it (calibration in docs/graph.md).';

-- ---------------------------------------------------------------- novelty within the collection

-- Outlier score per image: 1 - mean similarity to its k graph neighbours, calibrated to its
-- percentile among all images of the current graph (0 = the most typical, 1 = the most isolated).
CREATE MATERIALIZED VIEW ccvec.image_novelty AS
SELECT identifier, distance, (percent_rank() OVER (ORDER BY distance))::real AS novelty
FROM (SELECT identifier, (1 - avg(similarity))::real AS distance
      FROM ccvec.knn_current GROUP BY identifier) d
WITH NO DATA;
CREATE UNIQUE INDEX image_novelty_key ON ccvec.image_novelty (identifier);
COMMENT ON MATERIALIZED VIEW ccvec.image_novelty IS
    'Per-image outlier score in [0,1]: percentile of the mean kNN distance in the current graph.';

-- ---------------------------------------------------------------- novelty against a reference set

CREATE TABLE ccvec.novelty_model (
    name       text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]*$'),
    model      text NOT NULL REFERENCES ccvec.model (name) ON DELETE CASCADE,
    reference  text NOT NULL,   -- how the reference set was chosen, e.g. 'provider=flickr'
    k          integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    scored_at  timestamptz
);
COMMENT ON TABLE ccvec.novelty_model IS 'A reference set ("images like these") that other images are scored against.';

CREATE TABLE ccvec.novelty_reference (
    name       text NOT NULL REFERENCES ccvec.novelty_model (name) ON DELETE CASCADE,
    identifier uuid NOT NULL,
    distance   real,            -- leave-one-out kNN distance to the rest of the reference
    PRIMARY KEY (name, identifier)
);

CREATE TABLE ccvec.novelty_score (
    name       text NOT NULL REFERENCES ccvec.novelty_model (name) ON DELETE CASCADE,
    identifier uuid NOT NULL,
    distance   real NOT NULL,   -- mean cosine distance to the k nearest reference images
    novelty    real NOT NULL,   -- share of the reference images that are nearer their own set
    PRIMARY KEY (name, identifier)
);

-- Mean cosine distance from each of p_ids to its p_k nearest images of the reference p_name
-- (itself excluded), by exact search over the reference's embeddings.
CREATE FUNCTION ccvec.reference_distance(p_name text, p_ids uuid[])
RETURNS TABLE (identifier uuid, distance real)
LANGUAGE sql STABLE AS $$
    SELECT q.identifier, avg(nb.d)::real
    FROM ccvec.novelty_model m
    JOIN ccvec.image_embedding q ON q.model = m.model AND q.identifier = ANY (p_ids)
    CROSS JOIN LATERAL (
        SELECT q.embedding <=> r.embedding AS d
        FROM ccvec.novelty_reference ref
        JOIN ccvec.image_embedding r ON r.model = m.model AND r.identifier = ref.identifier
        WHERE ref.name = m.name AND ref.identifier <> q.identifier
        ORDER BY 1 LIMIT m.k) nb
    WHERE m.name = p_name
    GROUP BY q.identifier
$$;
COMMENT ON FUNCTION ccvec.reference_distance(text, uuid[]) IS
    'Mean cosine distance of images to their k nearest reference images (exact, reference excluded from itself).';

-- Score a batch: novelty = share of the reference images whose own (leave-one-out) distance is
-- below the image's distance, so 0.95 means "farther from the set than 95 % of its own members".
CREATE FUNCTION ccvec.novelty_score_batch(p_name text, p_ids uuid[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE n integer;
BEGIN
    INSERT INTO ccvec.novelty_score (name, identifier, distance, novelty)
    SELECT p_name, d.identifier, d.distance,
           (SELECT count(*) FILTER (WHERE r.distance < d.distance)::real / greatest(count(*), 1)
            FROM ccvec.novelty_reference r WHERE r.name = p_name)
    FROM ccvec.reference_distance(p_name, p_ids) d
    ON CONFLICT (name, identifier) DO UPDATE SET distance = excluded.distance, novelty = excluded.novelty;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.novelty_score_batch(text, uuid[]) IS
    'Score images against a fitted reference set (see ccvec.novelty_score).';

CREATE VIEW ccvec.reference_novelty AS
SELECT s.name, s.identifier, s.distance, s.novelty, m.reference
FROM ccvec.novelty_score s JOIN ccvec.novelty_model m USING (name)
WHERE NOT EXISTS (SELECT 1 FROM ccvec.novelty_reference r WHERE r.name = s.name AND r.identifier = s.identifier);
COMMENT ON VIEW ccvec.reference_novelty IS
    'Per reference set and image outside it: distance to the set and novelty in [0,1] (percentile against the set''s own members).';
