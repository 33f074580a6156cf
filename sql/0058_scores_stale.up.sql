-- `ccvec run` skipped the refresh ("scores: up to date") when the scores' inputs had changed
-- without new images in this run: a run interrupted after its graph or clustering changed and before
-- its refresh finished; a graph rebuilt or clusters made by the separate commands; a ranks release
-- or novelty reference set added; catalog rows a manifest changed. Every change to those inputs now
-- draws a number from a sequence (no lock, so concurrent loads do not wait on each other); a refresh
-- records the number it started from, and the scores are stale while a larger one has been drawn.
CREATE SEQUENCE ccvec.input_change;
COMMENT ON SEQUENCE ccvec.input_change IS
    'Drawn once per change to what the scores read (graph, clusterings, ranks releases, novelty models, catalog rows changed by a manifest): ccvec.scores_stale compares its last value with the one the last refresh started from.';

CREATE TABLE ccvec.refresh_state (
    singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    input_change bigint NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ccvec.refresh_state IS
    'One row: the ccvec.input_change value the last finished refresh started from, and when it finished.';
SELECT ccvec.copy_grants('ccvec.image_score', 'ccvec.refresh_state');

-- SECURITY DEFINER: a writer role changing catalog rows need not be granted the sequence.
CREATE FUNCTION ccvec.note_input_change() RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT nextval('ccvec.input_change')
$$;
COMMENT ON FUNCTION ccvec.note_input_change() IS
    'Marks the scores stale: draws the next ccvec.input_change value. Called by the triggers on the graph, clustering, ranks and novelty tables, and by ccvec.update_catalog when it changes rows.';

CREATE FUNCTION ccvec.input_change_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ccvec.note_input_change();
    RETURN NULL;
END $$;
COMMENT ON FUNCTION ccvec.input_change_trigger() IS
    'Statement trigger of the tables whose changes the scores read: ccvec.note_input_change().';

CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.knn_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.cluster_run
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
CREATE TRIGGER input_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ccvec.web_rank_release
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();
-- the refresh updates a model's scoring time: only a new or removed model is a change
CREATE TRIGGER input_change AFTER INSERT OR DELETE OR TRUNCATE ON ccvec.novelty_model
    FOR EACH STATEMENT EXECUTE FUNCTION ccvec.input_change_trigger();

CREATE FUNCTION ccvec.input_changes() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM ccvec.input_change
$$;
COMMENT ON FUNCTION ccvec.input_changes() IS
    'The last ccvec.input_change value drawn by any session (0 before the first): what a refresh starts from.';

CREATE FUNCTION ccvec.refresh_finished(p_input_change bigint) RETURNS void
LANGUAGE sql VOLATILE AS $$
    INSERT INTO ccvec.refresh_state (input_change) VALUES (p_input_change)
    ON CONFLICT (singleton) DO UPDATE SET input_change = excluded.input_change, finished_at = now()
$$;
COMMENT ON FUNCTION ccvec.refresh_finished(bigint) IS
    'Records a finished refresh that started at ccvec.input_changes() = p_input_change (ccvec refresh calls it last).';

CREATE FUNCTION ccvec.scores_stale() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT s.input_change FROM ccvec.refresh_state s), -1) < ccvec.input_changes()
$$;
COMMENT ON FUNCTION ccvec.scores_stale() IS
    'Whether what the scores read changed since the last finished refresh started (or none finished): `ccvec run` refreshes then, even when it loaded nothing new.';

CREATE OR REPLACE FUNCTION ccvec.update_catalog(p_ids uuid[], p_metadata jsonb[]) RETURNS integer
LANGUAGE plpgsql VOLATILE AS $$
DECLARE n integer;
BEGIN
    UPDATE ccvec.image i
    SET ingestion_type = (u.r).ingestion_type, provider = (u.r).provider, source = (u.r).source,
        foreign_identifier = (u.r).foreign_identifier, foreign_landing_url = (u.r).foreign_landing_url,
        thumbnail = (u.r).thumbnail, license = (u.r).license, license_version = (u.r).license_version,
        creator = (u.r).creator, creator_url = (u.r).creator_url, title = (u.r).title,
        meta_data = (u.r).meta_data, tags = (u.r).tags, watermarked = (u.r).watermarked,
        filetype = (u.r).filetype, category = (u.r).category, updated_on = now()
    FROM (SELECT o.identifier, jsonb_populate_record(o, m.metadata - '{identifier,url,width,height,filesize}'::text[]) AS r
          FROM unnest(p_ids, p_metadata) AS m (identifier, metadata)
          JOIN ccvec.image o ON o.identifier = m.identifier) u
    WHERE i.identifier = u.identifier AND ROW(i.*) IS DISTINCT FROM u.r;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM ccvec.note_input_change();  -- popularity and authority read these columns
    END IF;
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.update_catalog(uuid[], jsonb[]) IS
    'For each existing ccvec.image row among p_ids, the catalog columns its p_metadata object gives (manifest column names) replace the stored ones; columns it does not give keep theirs, and identifier, url, width, height and filesize are never changed (the image itself is not re-read). Rows that change get updated_on = now(). Returns the rows changed: `ccvec load` of a manifest after a folder of the same files fills in titles, providers and tags. A change marks the scores stale (ccvec.scores_stale).';
