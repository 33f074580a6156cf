-- A/B testing of the clustering: sometimes show a cluster-mate instead of a result, log what was
-- shown, import analytics events, and compare click-through rates rank by rank.

CREATE TABLE ccvec.experiment (
    name               text PRIMARY KEY,
    salt               text NOT NULL,
    treatment_share    real NOT NULL CHECK (treatment_share BETWEEN 0 AND 1),   -- of sessions
    substitution_share real NOT NULL CHECK (substitution_share BETWEEN 0 AND 1), -- of results, in treatment
    cluster_level      text NOT NULL DEFAULT 'default',
    starts_at          timestamptz NOT NULL DEFAULT now(),
    ends_at            timestamptz,
    status             text NOT NULL DEFAULT 'running' CHECK (status IN ('draft', 'running', 'stopped')),
    created_at         timestamptz NOT NULL DEFAULT now()
);

-- A stable number in [0, 1) from text: the first 32 bits of its md5.
CREATE FUNCTION ccvec.unit_hash(p_text text) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5(p_text), 1, 8))::bit(32)::bigint / 4294967296.0
$$;

-- The arm of a session: treatment for a stable share of sessions while the experiment runs.
CREATE FUNCTION ccvec.assign_arm(p_experiment text, p_session text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN e.status = 'running' AND now() >= e.starts_at AND (e.ends_at IS NULL OR now() < e.ends_at)
                     AND ccvec.unit_hash(e.salt || ':' || p_session) < e.treatment_share
                THEN 'treatment' ELSE 'control' END
    FROM ccvec.experiment e WHERE e.name = p_experiment
$$;

-- Best-scored members of every cluster of the current labels, for fast substitution.
CREATE MATERIALIZED VIEW ccvec.cluster_mate AS
SELECT c.level, c.cluster, c.identifier,
       row_number() OVER (PARTITION BY c.level, c.cluster
                          ORDER BY coalesce(s.popularity, 0) + coalesce(s.authority, 0) DESC, c.identifier) AS position
FROM ccvec.image_cluster c
LEFT JOIN ccvec.image_score s ON s.identifier = c.identifier
WITH NO DATA;  -- filled by `ccvec refresh`, after the scores
CREATE UNIQUE INDEX cluster_mate_key ON ccvec.cluster_mate (level, cluster, position);
CREATE INDEX cluster_mate_identifier ON ccvec.cluster_mate (identifier, level);

-- What was shown: one row per (experiment, session, query, rank), written by ccvec.substitute().
CREATE TABLE ccvec.ab_served (
    experiment  text NOT NULL REFERENCES ccvec.experiment (name) ON DELETE CASCADE,
    session     text NOT NULL,
    query       text NOT NULL,
    rank        integer NOT NULL,
    shown       uuid NOT NULL,
    original    uuid NOT NULL,
    arm         text NOT NULL,
    substituted boolean NOT NULL,
    served_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment, session, query, rank)
);
CREATE INDEX ab_served_shown_idx ON ccvec.ab_served (session, query, shown);

-- The page to show for an ordered result list. In the treatment arm a deterministic subset of
-- positions (hash of salt, session, query, rank < substitution_share) shows the best-scored
-- cluster-mate of the original that is not on the page already; positions whose cluster has no
-- such mate keep the original. Every row says what it is, and is logged in ab_served.
CREATE FUNCTION ccvec.substitute(p_experiment text, p_session text, p_query text, p_results uuid[])
RETURNS TABLE (rank integer, shown uuid, original uuid, arm text, substituted boolean)
LANGUAGE plpgsql AS $$
DECLARE
    e ccvec.experiment;
    v_arm text;
    on_page uuid[] := p_results;
    mate uuid;
    i integer;
BEGIN
    SELECT * INTO e FROM ccvec.experiment x WHERE x.name = p_experiment;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'no experiment named %', p_experiment;
    END IF;
    v_arm := ccvec.assign_arm(p_experiment, p_session);
    FOR i IN 1 .. coalesce(array_length(p_results, 1), 0) LOOP
        mate := NULL;
        IF v_arm = 'treatment'
           AND ccvec.unit_hash(e.salt || ':' || p_session || ':' || p_query || ':' || i) < e.substitution_share THEN
            SELECT m.identifier INTO mate
            FROM ccvec.cluster_mate o
            JOIN ccvec.cluster_mate m ON m.level = o.level AND m.cluster = o.cluster
            WHERE o.identifier = p_results[i] AND o.level = e.cluster_level
              AND NOT m.identifier = ANY (on_page)
            ORDER BY m.position
            LIMIT 1;
        END IF;
        IF mate IS NOT NULL THEN
            on_page := on_page || mate;
        END IF;
        INSERT INTO ccvec.ab_served AS a (experiment, session, query, rank, shown, original, arm, substituted)
        VALUES (p_experiment, p_session, p_query, i, coalesce(mate, p_results[i]), p_results[i], v_arm,
                mate IS NOT NULL)
        ON CONFLICT ON CONSTRAINT ab_served_pkey DO NOTHING;
        rank := i;
        shown := coalesce(mate, p_results[i]);
        original := p_results[i];
        arm := v_arm;
        substituted := mate IS NOT NULL;
        RETURN NEXT;
    END LOOP;
END $$;

-- Analytics events (Openverse: query, result_uuid, result_rank, session_uuid, timestamp, type),
-- imported idempotently: the same event twice is one row.
CREATE TABLE ccvec.ab_event (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    experiment  text NOT NULL REFERENCES ccvec.experiment (name) ON DELETE CASCADE,
    event_type  text NOT NULL CHECK (event_type IN ('impression', 'click')),
    session     text NOT NULL,
    query       text NOT NULL,
    result_uuid uuid NOT NULL,
    result_rank integer NOT NULL CHECK (result_rank >= 1),
    occurred_at timestamptz NOT NULL,
    CONSTRAINT ab_event_once UNIQUE (experiment, event_type, session, query, result_uuid, result_rank, occurred_at)
);

-- One row per served position with whether it was clicked: the unit of analysis.
CREATE VIEW ccvec.ab_outcome AS
SELECT s.experiment, s.session, s.query, s.rank, s.shown, s.original, s.arm, s.substituted,
       EXISTS (SELECT 1 FROM ccvec.ab_event c
               WHERE c.experiment = s.experiment AND c.event_type = 'click' AND c.session = s.session
                 AND c.query = s.query AND c.result_uuid = s.shown) AS clicked,
       m.cluster
FROM ccvec.ab_served s
JOIN ccvec.experiment e ON e.name = s.experiment
LEFT JOIN ccvec.cluster_mate m ON m.identifier = s.original AND m.level = e.cluster_level;

-- Clicks on alternates, as observed signals for images the catalog rarely shows.
CREATE VIEW ccvec.ab_alternate_signal AS
SELECT shown AS identifier, count(*) AS impressions, count(*) FILTER (WHERE clicked) AS clicks,
       (count(*) FILTER (WHERE clicked))::real / count(*) AS ctr
FROM ccvec.ab_outcome WHERE substituted
GROUP BY shown;
