-- Restores ccvec.update_catalog as 0027 wrote it.
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
    RETURN n;
END $$;
COMMENT ON FUNCTION ccvec.update_catalog(uuid[], jsonb[]) IS
    'For each existing ccvec.image row among p_ids, the catalog columns its p_metadata object gives (manifest column names) replace the stored ones; columns it does not give keep theirs, and identifier, url, width, height and filesize are never changed (the image itself is not re-read). Rows that change get updated_on = now(). Returns the rows changed: `ccvec load` of a manifest after a folder of the same files fills in titles, providers and tags.';

DROP FUNCTION ccvec.scores_stale();
DROP FUNCTION ccvec.refresh_finished(bigint);
DROP FUNCTION ccvec.input_changes();
DROP TRIGGER input_change ON ccvec.novelty_model;
DROP TRIGGER input_change ON ccvec.web_rank_release;
DROP TRIGGER input_change ON ccvec.cluster_run;
DROP TRIGGER input_change ON ccvec.knn_run;
DROP FUNCTION ccvec.input_change_trigger();
DROP FUNCTION ccvec.note_input_change();
DROP TABLE ccvec.refresh_state;
DROP SEQUENCE ccvec.input_change;
