-- A folder loaded again, and its report, read the rows loaded from under it (ccvec.folder_images,
-- twice a `ccvec run`: the load's notes, then the report's files gone since). That was a scan of
-- ccvec.image: 0.57 s at 2M catalog rows, some minutes each at Openverse's size, for a folder of
-- 40 files. A partial index over the rows loaded from files (none in a catalog loaded from URLs,
-- so it costs such a catalog nothing but the one scan that builds it) makes it a range read:
-- 0.06 ms. The C collation lets the planner turn the prefix test into that range.
CREATE INDEX image_file_url_idx ON ccvec.image ((url::text) COLLATE "C") WHERE starts_with(url::text, 'file:');

CREATE OR REPLACE FUNCTION ccvec.folder_images(p_prefix text)
RETURNS TABLE (identifier uuid, url text, filesize integer)
LANGUAGE sql STABLE AS $$
    SELECT i.identifier, i.url::text, i.filesize FROM ccvec.image i
    WHERE starts_with(i.url::text, 'file:') AND starts_with(i.url::text, p_prefix);
$$;
COMMENT ON FUNCTION ccvec.folder_images(text) IS
    'Every catalog row whose url starts with p_prefix (a folder''s file URI and a slash), with its size in bytes: a load of that folder compares them with the files there now, to report images whose file is gone (renamed, moved or deleted) or changed, and the folder''s report leaves the gone ones out. A range read of the partial index image_file_url_idx (rows loaded from files only).';
