-- Small fixes (issue "small bugs"): each section says what it replaces; the down file restores it.

-- ccvec.load_errors returned no rows for a load run that does not exist, so `ccvec errors --run 99`
-- said "no load errors". Now it raises VC002 naming the run and the newest one.
CREATE OR REPLACE FUNCTION ccvec.load_errors(p_run bigint)
RETURNS TABLE (run_id bigint, stage text, source text, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE newest bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ccvec.load_run r WHERE r.id = p_run) THEN
        SELECT max(r.id) INTO newest FROM ccvec.load_run r;
        RAISE EXCEPTION 'load run % does not exist (%)', p_run,
            CASE WHEN newest IS NULL THEN 'nothing has been loaded yet'
                 ELSE format('the newest is run %s', newest) END
            USING ERRCODE = 'VC002';
    END IF;
    RETURN QUERY
        SELECT e.run_id, e.stage, e.source, e.reason FROM ccvec.load_error e WHERE e.run_id = p_run ORDER BY e.id;
END $$;
COMMENT ON FUNCTION ccvec.load_errors(bigint) IS
    'The inputs load run p_run could not load, in the order they failed, with the stage and reason: `ccvec errors --run`. Raises VC002 when there is no such run.';

-- ccvec.ab_outcome read the original's cluster from ccvec.cluster_mate, a materialized view only
-- `ccvec refresh` fills, so `ccvec experiment report` failed until a refresh had run, though its
-- counts need no refresh. It reads the current clusters (ccvec.image_cluster) now.
CREATE OR REPLACE VIEW ccvec.ab_outcome AS
SELECT s.experiment, s.session, s.query, s.rank, s.shown, s.original, s.arm, s.substituted,
       EXISTS (SELECT 1 FROM ccvec.ab_event c
               WHERE c.experiment = s.experiment AND c.event_type = 'click' AND c.session = s.session
                 AND c.query = s.query AND c.result_uuid = s.shown) AS clicked,
       m.cluster
FROM ccvec.ab_served s
JOIN ccvec.experiment e ON e.name = s.experiment
LEFT JOIN ccvec.image_cluster m ON m.identifier = s.original AND m.level = e.cluster_level;
COMMENT ON VIEW ccvec.ab_outcome IS
    'One row per served position with whether its shown image was clicked in that session and query, and the original''s current cluster at the experiment''s level (ccvec.image_cluster: no refresh needed): the unit of analysis.';

-- ccvec.matview_populated (0017) did what ccvec.view_populated (0010) does, but NULL for a view that
-- does not exist; its one caller (ccvec.db.refresh_view) uses view_populated now.
DROP FUNCTION IF EXISTS ccvec.matview_populated(text);

-- A manifest loaded after the folder of the same files (same identifiers) left the catalog rows as
-- the folder made them: ccvec.ingest_batch inserts new identifiers only, and skipped images are not
-- staged. ccvec.load now passes every manifest row's catalog columns through this function first.
CREATE FUNCTION ccvec.update_catalog(p_ids uuid[], p_metadata jsonb[]) RETURNS integer
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
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.update_catalog(uuid[], jsonb[]) IS
    'For each existing ccvec.image row among p_ids, the catalog columns its p_metadata object gives (manifest column names) replace the stored ones; columns it does not give keep theirs, and identifier, url, width, height and filesize are never changed (the image itself is not re-read). Rows that change get updated_on = now(). Returns the rows changed: `ccvec load` of a manifest after a folder of the same files fills in titles, providers and tags.';
